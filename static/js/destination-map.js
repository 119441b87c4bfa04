/*
 * Destination picker: a small Leaflet map that fills coordinate inputs when clicked.
 *
 * MARKUP IT EXPECTS (the page also loads static/vendor/leaflet/leaflet.css, then, deferred,
 * static/vendor/leaflet/leaflet.js and this file; no inline script, CSP):
 *
 *   The navigation form (remotes/forms.py NavigationForm: ONE textarea `positions`, id
 *   "id_positions", one "latitude, longitude" line per point, the last line the destination):
 *     <div data-destination-map data-positions-input="id_positions"></div>
 *   A click on the map appends "lat, lon" as a new line (at most 10); "Remove the last point"
 *   takes one off; typing in the textarea moves the markers.
 *
 *   Or a form with two separate inputs:
 *     <div data-destination-map data-lat-input="id_latitude" data-lon-input="id_longitude"></div>
 *   A click sets both inputs (one destination).
 *
 *   Optional on either: data-center-lat / data-center-lon (e.g. the vehicle's last position) to
 *   start the map there, data-zoom (default 12 when centred, else France at 5).
 *
 * Without JavaScript, or where Leaflet did not load, nothing changes: the inputs stay as they
 * are. Where OpenStreetMap's tiles cannot load, clicking still works and a note says so.
 */
(function () {
  "use strict";
  var TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
  var MAX_POINTS = 10;

  function parseLines(value) {
    var points = [];
    value.split(/\r?\n/).forEach(function (line) {
      var parts = line.replace(";", ",").split(",");
      if (parts.length !== 2) return;
      var lat = parseFloat(parts[0]), lon = parseFloat(parts[1]);
      if (isFinite(lat) && isFinite(lon) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180) points.push([lat, lon]);
    });
    return points;
  }

  function fmt(n) { return (Math.round(n * 1e6) / 1e6).toFixed(6).replace(/0+$/, "").replace(/\.$/, ""); }

  function enhance(box) {
    var L = window.L;
    var textarea = box.getAttribute("data-positions-input") && document.getElementById(box.getAttribute("data-positions-input"));
    var latInput = box.getAttribute("data-lat-input") && document.getElementById(box.getAttribute("data-lat-input"));
    var lonInput = box.getAttribute("data-lon-input") && document.getElementById(box.getAttribute("data-lon-input"));
    if (!textarea && !(latInput && lonInput)) return;

    var help = document.createElement("p");
    help.className = "meta";
    help.id = "destination-map-help-" + Math.random().toString(36).slice(2, 8);
    help.textContent = textarea
      ? "Click the map to add a point (the last one is the destination), or type them above."
      : "Click the map to set the destination, or type its coordinates.";
    var mapEl = document.createElement("div");
    mapEl.className = "destination-map";
    // Sized here: the page that holds it need not link the console's stylesheet.
    mapEl.style.height = "260px";
    mapEl.style.margin = "0.4rem 0";
    mapEl.setAttribute("role", "application");
    mapEl.setAttribute("aria-label", "Map to pick the destination");
    mapEl.setAttribute("aria-describedby", help.id);
    var note = document.createElement("p");
    note.className = "map-note";
    note.hidden = true;
    note.textContent = "The map's background could not load here; clicking still picks coordinates.";
    box.appendChild(help);
    box.appendChild(mapEl);
    box.appendChild(note);

    var centreLat = parseFloat(box.getAttribute("data-center-lat")), centreLon = parseFloat(box.getAttribute("data-center-lon"));
    var centred = isFinite(centreLat) && isFinite(centreLon);
    var map = L.map(mapEl).setView(centred ? [centreLat, centreLon] : [46.6, 2.4], parseInt(box.getAttribute("data-zoom"), 10) || (centred ? 12 : 5));
    var tiles = L.tileLayer(TILES, { maxZoom: 19, attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors' });
    tiles.on("tileerror", function () { note.hidden = false; });
    tiles.addTo(map);
    var layer = L.layerGroup().addTo(map);

    function current() {
      if (textarea) return parseLines(textarea.value);
      var lat = parseFloat(latInput.value), lon = parseFloat(lonInput.value);
      return isFinite(lat) && isFinite(lon) ? [[lat, lon]] : [];
    }

    function redraw() {
      layer.clearLayers();
      var points = current();
      points.forEach(function (p, i) {
        var last = i === points.length - 1;
        L.marker(p, { title: (last ? "Destination" : "Point " + (i + 1)) + ": " + fmt(p[0]) + ", " + fmt(p[1]) }).addTo(layer);
      });
      if (points.length > 1) L.polyline(points, { weight: 2, dashArray: "4 4" }).addTo(layer);
      box.setAttribute("data-point-count", String(points.length));
    }

    function changed(input) { input.dispatchEvent(new Event("input", { bubbles: true })); input.dispatchEvent(new Event("change", { bubbles: true })); }

    map.on("click", function (e) {
      var lat = fmt(e.latlng.lat), lon = fmt(L.Util.wrapNum(e.latlng.lng, [-180, 180], true));
      if (textarea) {
        var lines = textarea.value.split(/\r?\n/).filter(function (l) { return l.trim() !== ""; });
        if (lines.length >= MAX_POINTS) { help.textContent = "At most " + MAX_POINTS + " points: remove one first."; return; }
        lines.push(lat + ", " + lon);
        textarea.value = lines.join("\n");
        changed(textarea);
      } else {
        latInput.value = lat;
        lonInput.value = lon;
        changed(latInput);
        changed(lonInput);
      }
      redraw();
    });

    if (textarea) {
      var undo = document.createElement("button");
      undo.type = "button";
      undo.textContent = "Remove the last point";
      undo.addEventListener("click", function () {
        var lines = textarea.value.split(/\r?\n/).filter(function (l) { return l.trim() !== ""; });
        lines.pop();
        textarea.value = lines.join("\n");
        changed(textarea);
        redraw();
      });
      box.appendChild(undo);
      textarea.addEventListener("input", redraw);
    } else {
      latInput.addEventListener("input", redraw);
      lonInput.addEventListener("input", redraw);
    }
    redraw();
    var points = current();
    if (points.length) map.fitBounds(L.latLngBounds(points).pad(0.3), { maxZoom: 14 });
  }

  function start() {
    if (typeof window.L === "undefined") return;
    Array.prototype.forEach.call(document.querySelectorAll("[data-destination-map]"), enhance);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
