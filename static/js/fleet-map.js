// The fleet map (templates/console/map.html): Leaflet + markercluster, both vendored.
// Markers come from the JSON at data-positions-url ({columns, vehicles: [[vin, lat, lon, label, state]], states});
// tiles are fetched by the browser from OpenStreetMap. Where tiles cannot load the markers still
// show on a plain background and #tiles-note says why; the count and a list are always shown.
(function () {
  "use strict";
  var LETTER = { online: "O", asleep: "A", offline: "X", unknown: "?" };
  var LIST_LIMIT = 500;

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  }

  function vehicleLink(template, vin) {
    var a = document.createElement("a");
    a.href = template.replace("VIN", encodeURIComponent(vin));
    a.textContent = vin;
    a.className = "mono";
    return a;
  }

  function showList(box, rows, states, template) {
    box.textContent = "";
    if (!rows.length) { box.appendChild(text("p", "No vehicle has reported a position yet.")); return; }
    var ul = document.createElement("ul");
    rows.slice(0, LIST_LIMIT).forEach(function (r) {
      var li = document.createElement("li");
      li.appendChild(vehicleLink(template, r[0]));
      li.appendChild(document.createTextNode(" " + (r[3] || "") + " · " + (states[r[4]] || r[4]) + " · " + r[1].toFixed(5) + ", " + r[2].toFixed(5)));
      ul.appendChild(li);
    });
    box.appendChild(ul);
    if (rows.length > LIST_LIMIT) box.appendChild(text("p", "…and " + (rows.length - LIST_LIMIT) + " more: use the vehicle list.", "meta"));
  }

  function popup(row, states, template) {
    var div = document.createElement("div");
    div.className = "map-popup";
    var title = document.createElement("strong");
    title.appendChild(vehicleLink(template, row[0]));
    div.appendChild(title);
    if (row[3]) div.appendChild(text("div", row[3]));
    div.appendChild(text("div", states[row[4]] || row[4], "state-words"));
    var open = vehicleLink(template, row[0]);
    open.textContent = "Open the vehicle page";
    open.className = "popup-open";
    div.appendChild(open);
    return div;
  }

  function start() {
    var el = document.getElementById("fleet-map");
    var count = document.getElementById("map-count");
    if (!el) return;
    if (typeof window.L === "undefined") {
      count.textContent = "the map could not start";
      return;
    }
    var L = window.L;
    var template = el.getAttribute("data-vehicle-url");
    var map = L.map(el, { worldCopyJump: true, preferCanvas: false }).setView([46.6, 2.4], 5);
    var tiles = L.tileLayer(el.getAttribute("data-tiles"), {
      maxZoom: 19,
      attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
    });
    var note = document.getElementById("tiles-note");
    tiles.on("tileerror", function () { if (note) note.hidden = false; });
    tiles.addTo(map);

    fetch(el.getAttribute("data-positions-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) {
        var rows = data.vehicles, states = data.states || {};
        count.textContent = rows.length + " vehicle" + (rows.length === 1 ? "" : "s") + " with a known position";
        el.setAttribute("data-vehicle-count", String(rows.length));
        showList(document.getElementById("map-list"), rows, states, template);
        if (!rows.length) return;
        var cluster = L.markerClusterGroup ? L.markerClusterGroup({ chunkedLoading: true, showCoverageOnHover: false }) : L.layerGroup();
        var markers = rows.map(function (r) {
          var words = states[r[4]] || r[4];
          var icon = L.divIcon({ className: "vehicle-marker state-" + r[4], html: LETTER[r[4]] || "?", iconSize: [26, 26] });
          var m = L.marker([r[1], r[2]], { icon: icon, title: r[0] + " · " + words, alt: r[0] + " · " + words, keyboard: true });
          m.bindPopup(function () { return popup(r, states, template); });
          return m;
        });
        if (cluster.addLayers) cluster.addLayers(markers); else markers.forEach(function (m) { cluster.addLayer(m); });
        map.addLayer(cluster);
        var bounds = L.latLngBounds(rows.map(function (r) { return [r[1], r[2]]; }));
        map.fitBounds(bounds.pad(0.1), { maxZoom: 13 });
      })
      .catch(function () { count.textContent = "positions could not be loaded; reload the page"; });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
