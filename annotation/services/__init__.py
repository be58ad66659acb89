"""Actions that change state: rounds, the crowd path, model verdicts, background imports."""
