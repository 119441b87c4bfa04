// The first time a person is seen without a chosen time zone, send the browser's: it becomes
// their zone (changeable on the time-zone page). No reload: the next page shows it.
(function () {
  "use strict";
  var link = document.getElementById("time-zone-link");
  if (!link || link.dataset.chosen !== "0" || !window.fetch || !window.Intl) return;
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone) return;
  var token = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (!token) return;
  var body = new URLSearchParams({ time_zone: zone, auto: "1" });
  fetch(link.dataset.save, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRFToken": token.value, "Content-Type": "application/x-www-form-urlencoded" },
    body: body.toString(),
  }).then(function (answer) {
    if (answer.ok) {
      link.dataset.chosen = "1";
    }
  }).catch(function () { /* the portal's zone stays: nothing lost */ });
})();
