// The action page: poll the timeline fragment until the action is final; show the time since the request.
// A static file (not inline) so the Content-Security-Policy can say script-src 'self'.
(function () {
  const live = document.getElementById("live");
  if (!live) { return; }
  const created = new Date(live.dataset.created);
  function tick() {
    const el = document.getElementById("elapsed");
    if (el) { el.textContent = Math.max(0, Math.round((Date.now() - created) / 1000)) + " s since the request"; }
  }
  async function poll() {
    try {
      const r = await fetch(live.dataset.url, {headers: {"X-Requested-With": "fetch"}});
      if (r.ok) {
        live.innerHTML = await r.text();
        tick();
        if (live.querySelector("[data-final='1']")) { return; }
      }
    } catch (e) { /* network hiccup: try again */ }
    setTimeout(poll, 1000);
  }
  setInterval(tick, 1000); tick();
  if (live.dataset.final !== "1") { setTimeout(poll, 1000); }
})();
