// A feature's form: show only what the chosen mode needs; hidden fields are still posted empty.
// The modes come from the page's <script type="application/json" id="mode-fields"> (data, not code).
(function () {
  const data = document.getElementById("mode-fields");
  const select = document.querySelector("select[name=mode]");
  if (!data || !select) { return; }
  const modes = JSON.parse(data.textContent);
  const managed = new Set(Object.values(modes).flat());
  function apply() {
    const wanted = new Set(modes[select.value] || []);
    managed.forEach(function (name) {
      const el = document.getElementById(name === "programs" ? "programs" : "field-" + name);
      if (el) { el.hidden = !wanted.has(name); }
    });
  }
  select.addEventListener("change", apply); apply();
})();
