// New bulk request: choosing another command re-renders the form for it (the "Choose" button
// does the same without JavaScript).
(function () {
  const select = document.querySelector("select[data-bulk-member]");
  const choose = document.getElementById("bulk-choose");
  if (!select || !choose) { return; }
  choose.hidden = true;
  select.addEventListener("change", function () { choose.click(); });
})();
