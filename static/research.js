// A click on a read-only link box (the crowd link) selects the whole link, ready to copy.
document.addEventListener("click", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement && target.classList.contains("link-box")) target.select();
});

// A file input with a size limit (the import form) refuses a larger file as soon as it is
// chosen, so that it is never uploaded; the server checks the size again.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.dataset.maxBytes) return;
  const tooLarge = Array.from(input.files || []).some((file) => file.size > Number(input.dataset.maxBytes));
  input.setCustomValidity(tooLarge ? input.dataset.tooLarge || "The file is too large." : "");
  if (tooLarge) input.reportValidity();
});
