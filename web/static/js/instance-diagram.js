/* Draws a BPMN diagram with bpmn-js's navigated viewer and marks elements: the JSON at data-source gives
   {xml, markers: [{id, cls}], badges: [{id, text, cls}]}. Used by the instance page (done / active / overdue)
   and the report page (heatmap by % on time). No inline script: the page's CSP allows only our files. */
(function () {
  "use strict";
  var container = document.getElementById("alur-diagram");
  if (!container || !window.BpmnJS) { return; }

  function fail() {
    container.setAttribute("data-state", "error");
    container.textContent = container.getAttribute("data-error") || "Diagram error";
  }

  fetch(container.getAttribute("data-source"), {
    credentials: "same-origin", headers: { "Accept": "application/json" }
  }).then(function (response) {
    if (!response.ok) { throw new Error("HTTP " + response.status); }
    return response.json();
  }).then(function (data) {
    var viewer = new window.BpmnJS({ container: container });
    return viewer.importXML(data.xml).then(function () {
      var canvas = viewer.get("canvas");
      var overlays = viewer.get("overlays");
      var registry = viewer.get("elementRegistry");
      canvas.zoom("fit-viewport", "auto");
      (data.markers || []).forEach(function (m) {
        if (registry.get(m.id)) { canvas.addMarker(m.id, m.cls); }
      });
      (data.badges || []).forEach(function (b) {
        if (!registry.get(b.id)) { return; }
        var badge = document.createElement("div");
        badge.className = "alur-badge " + (b.cls || "");
        badge.textContent = b.text;  // text, never HTML: names come from users
        badge.title = b.text;
        overlays.add(b.id, "alur-badge", { position: { bottom: 8, left: -6 }, html: badge });
      });
      container.setAttribute("data-state", "ready");
    });
  }).catch(fail);
}());
