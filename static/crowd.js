// Keys 1, 2 and 3 press the matching choice button, unless the worker is typing in a field.
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  const target = event.target;
  if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) return;
  const button = document.querySelector(`#task button[data-key="${event.key}"]`);
  if (button && !button.disabled) {
    event.preventDefault();
    button.click();
  }
});

// htmx swaps the next item in place of the answered one, and the focus goes with the old item:
// bring the worker to the new item's start, focus its heading (keys and screen readers go on
// from there) and announce the progress. A swap that leaves the focus alone (the waiting page
// polling) leaves it where it is.
document.addEventListener("htmx:afterSwap", () => {
  const task = document.getElementById("task");
  if (!task) return;
  const heading = task.querySelector("[tabindex='-1']") || task.querySelector("h1, h2");
  const focused = document.activeElement;
  if (heading && (!focused || focused === document.body || !focused.isConnected)) {
    if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
    task.scrollIntoView({ block: "start" });
    heading.focus({ preventScroll: true });
  }
  const status = document.getElementById("crowd-status");
  const progress = task.querySelector(".progress-text");
  const message = progress ? `Item ${progress.textContent}` : heading ? heading.textContent : "";
  if (status && status.textContent !== message) status.textContent = message;
});
