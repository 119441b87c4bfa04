// The vehicle list: "select all on this page", and the filters folded away on a phone.
(function () {
  "use strict";
  var all = document.querySelector("[data-select-all]");
  if (all) {
    var boxes = function () {
      return document.querySelectorAll('input[type=checkbox][name="' + all.getAttribute("data-select-all") + '"]');
    };
    all.addEventListener("change", function () {
      boxes().forEach(function (box) { box.checked = all.checked; });
    });
    document.addEventListener("change", function (event) {
      if (event.target === all || event.target.name !== all.getAttribute("data-select-all")) return;
      var list = Array.prototype.slice.call(boxes());
      var checked = list.filter(function (b) { return b.checked; }).length;
      all.checked = checked === list.length;
      all.indeterminate = checked > 0 && checked < list.length;
    });
  }
  var filters = document.getElementById("filters");
  if (filters && window.matchMedia("(max-width: 760px)").matches) {
    filters.open = false;
  }
})();
