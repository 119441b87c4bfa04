// Links marked data-history-back go back one page (the admin's "Cancel" on an intermediate page).
document.addEventListener("click", function (event) {
  const link = event.target.closest("[data-history-back]");
  if (link) { event.preventDefault(); window.history.back(); }
});
