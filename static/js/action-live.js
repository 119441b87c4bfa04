// The action page: htmx keeps the timeline fresh (templates/remotes/_poller.html); this only
// shows the time since the request while the action is still open.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }
  var created = new Date(live.dataset.created);
  function tick() {
    var el = document.getElementById("elapsed");
    if (el) { el.textContent = Math.max(0, Math.round((Date.now() - created) / 1000)) + " s since the request"; }
  }
  setInterval(tick, 1000);
  tick();
})();
