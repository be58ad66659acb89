// A number key presses the choice button marked with it (1-3 for a comparison, one per rating), unless the worker is typing in a field.
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  const target = event.target;
  if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) return;
  const button = document.querySelector(`#task button[data-key="${event.key}"]`);
  if (button && !button.disabled) {
    event.preventDefault();
    // htmx takes over a swapped-in form only once it settles (20 ms later): a key pressed
    // sooner would post the form as a full page load. Take it over now (a no-op if done).
    if (window.htmx && button.form) window.htmx.process(button.form);
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

// An answer lost on the way (no connection, or a server error) is sent once more a second later,
// with the same item and choice: the server records one answer per item, so sending again one
// that did arrive records nothing twice. If that fails too the worker is told, with a button to
// send it again. A rate limit's refusal (429) is shown above the buttons; the item stays.
const ANSWER_FORM = "#task form.choices";
const RETRY_DELAY_MS = 1000;
const answersSent = new WeakMap();

function answerForm(element) {
  return element instanceof HTMLFormElement && element.matches(ANSWER_FORM) ? element : null;
}

function answerNotice(form, text, withRetry) {
  let notice = form.querySelector(".answer-notice");
  if (!notice) {
    notice = document.createElement("div");
    notice.className = "answer-notice error";
    notice.setAttribute("role", "alert");
    form.append(notice);
  }
  const message = document.createElement("p");
  message.textContent = text;
  notice.replaceChildren(message);
  if (withRetry) {
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "primary answer-retry";
    retry.textContent = "Send my answer again";
    retry.addEventListener("click", () => answerResend(form));
    notice.append(retry);
  }
}

function answerButtons(form, disabled) {
  for (const button of form.querySelectorAll("button[name='choice']")) button.disabled = disabled;
}

function answerResend(form) {
  const answer = answersSent.get(form);
  if (!answer || !form.isConnected) return;
  answer.attempts += 1;
  answerNotice(form, "Sending your answer…", false);
  // Enabled again first, so that htmx disables them for the request and enables them after it.
  answerButtons(form, false);
  form.dataset.resending = "1";
  const request = window.htmx.ajax("POST", answer.path, {
    source: form,
    target: "#task",
    swap: "outerHTML",
    values: answer.values,
  });
  delete form.dataset.resending;
  // A failure is handled below, from htmx:afterRequest.
  if (request) request.catch(() => {});
}

function limitMessage(xhr) {
  const page = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
  const error = page.querySelector(".error");
  return error ? error.textContent.trim().replace(/\s+/g, " ") : "Too many answers right now; please wait a minute and answer again.";
}

document.addEventListener("htmx:configRequest", (event) => {
  const form = answerForm(event.detail.elt);
  if (!form || form.dataset.resending) return;
  const data = event.detail.formData;
  answersSent.set(form, {
    path: event.detail.path,
    values: { assignment: data.get("assignment"), choice: data.get("choice") },
    attempts: 1,
  });
  const notice = form.querySelector(".answer-notice");
  if (notice) notice.remove();
});

// After htmx has enabled the buttons again; an answered item is no longer in the page.
document.addEventListener("htmx:afterRequest", (event) => {
  const form = answerForm(event.detail.elt);
  const answer = form && answersSent.get(form);
  if (!answer || !form.isConnected) return;
  const status = event.detail.xhr.status;
  if (status === 429) {
    answerNotice(form, limitMessage(event.detail.xhr), false);
  } else if (status === 0 || status >= 500) {
    if (answer.attempts < 2) {
      answerNotice(form, "The connection failed; sending your answer again…", false);
      answerButtons(form, true);
      setTimeout(() => answerResend(form), RETRY_DELAY_MS);
    } else {
      answerNotice(form, "Your answer could not be sent. Check your connection, then send it again.", true);
    }
  }
});
