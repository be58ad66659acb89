"""Demo content for the quickstart: prompts and two models' answers, written for this project."""

DEMO_PROMPTS: list[tuple[str, str, str]] = [
    (
        "Explain what a hash table is to someone who has just learned about arrays.",
        "A hash table is an array with a clever way of choosing the slot for each item.\n\n"
        "1. You pick a **key** (say a word) and run it through a *hash function*, which turns "
        "it into a number.\n"
        "2. That number, modulo the array's length, is the slot where the value goes.\n"
        "3. To look the key up later you hash it again and jump straight to the slot.\n\n"
        "Two keys can land in the same slot (a *collision*); real tables keep a short list "
        "per slot or probe the next free one. Because you jump instead of searching, "
        "lookups take about the same time whether the table holds ten items or ten million.",
        "A hash table stores key-value pairs. It uses a hash function. It is fast.",
    ),
    (
        "Write a Python function that returns the n-th Fibonacci number.",
        "Iterating keeps it fast and avoids recursion limits:\n\n"
        "```python\n"
        "def fibonacci(n: int) -> int:\n"
        "    if n < 0:\n"
        '        raise ValueError("n must be non-negative")\n'
        "    current, following = 0, 1\n"
        "    for _ in range(n):\n"
        "        current, following = following, current + following\n"
        "    return current\n"
        "```\n\n"
        "`fibonacci(10)` returns `55`.",
        "```python\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n```\n\n"
        "This is the classic recursive version; it gets slow for large n.",
    ),
    (
        "I have a job interview tomorrow and I'm very nervous. Any advice?",
        "Feeling nervous means you care, and that is a good sign. A few things help most:\n\n"
        "- **Tonight:** reread the job description and prepare two short stories about work "
        "you are proud of. Then stop preparing and sleep.\n"
        "- **Tomorrow morning:** eat something, arrive ten minutes early, and take three slow "
        "breaths before you go in.\n"
        "- **In the room:** it is fine to pause before answering, and to ask them to repeat "
        "a question.\n\n"
        "They invited you because your application already convinced them. Good luck!",
        "Just relax and be yourself. Interviews are normal and everyone has them.",
    ),
    (
        "Compare tea and coffee in a small table: caffeine, taste, and preparation time.",
        "| | Tea | Coffee |\n|---|---|---|\n"
        "| Caffeine (per cup) | about 30-50 mg | about 80-120 mg |\n"
        "| Taste | light, floral to earthy | strong, bitter to fruity |\n"
        "| Preparation | 3-5 minutes steeping | 1-5 minutes, depending on method |\n\n"
        "Both vary a lot with the variety and how long you brew them.",
        "Tea has less caffeine than coffee. Coffee is more bitter. Both are quick to make.",
    ),
    (
        "Summarise the plot of a story about a lighthouse keeper who finds a message in a "
        "bottle, in three sentences.",
        "A lonely lighthouse keeper finds a bottle on the rocks holding a letter from a child "
        "who lives across the bay. He writes back, and over one winter their letters carry "
        "weather reports, drawings and small confessions. In spring the child's family rows "
        "out to the lighthouse, and the keeper learns that the letters kept someone else "
        "company too.",
        "A keeper finds a bottle. There is a message inside. He is happy.",
    ),
    (
        "What is the difference between weather and climate?",
        "**Weather** is what the atmosphere is doing now or over the next days: rain "
        "tomorrow, a heatwave this week. **Climate** is the long-run pattern of weather in a "
        "place, usually averaged over 30 years or more. A cold day says little about the "
        "climate; a decade of warmer winters says a lot.",
        "Weather is short term and climate is long term.",
    ),
    (
        "Give me three ideas for a rainy Sunday afternoon with two kids aged 6 and 9.",
        "1. **Blanket-fort cinema:** build a fort together, then watch a film inside it with "
        "home-made popcorn.\n"
        "2. **Kitchen science:** baking soda and vinegar volcanoes, or grow salt crystals on "
        "a string.\n"
        "3. **Treasure hunt:** the 9-year-old writes rhyming clues and the 6-year-old hides "
        "the treasure, then they swap.",
        "You could watch TV, play a board game, or read books.",
    ),
    (
        "How do I politely decline a wedding invitation from a colleague?",
        "Reply soon, keep it warm and short, and don't over-explain:\n\n"
        "> Thank you so much for inviting me. Unfortunately I can't make it on the day, but "
        "I'll be thinking of you both and I hope it's a wonderful celebration.\n\n"
        "If you are close, a card or a small gift is a kind extra touch.",
        "Tell them you can't come. Be polite about it.",
    ),
]

DEMO_CANDIDATE = "demo-candidate"
DEMO_BASELINE = "demo-baseline"
