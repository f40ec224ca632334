// runnel console: confirmation of dangerous forms and the data viewer.
"use strict";

document.querySelectorAll("form[data-confirm]").forEach(function (f) {
  f.addEventListener("submit", function (e) {
    if (!window.confirm(f.dataset.confirm)) e.preventDefault();
  });
});

// Sections marked data-refresh are fetched again every few seconds (the
// rates are sampled every five), while the page is visible; nothing the
// user is typing is in them.
(function () {
  var marked = document.querySelectorAll("[data-refresh][id]");
  if (marked.length === 0) return;
  setInterval(function () {
    if (document.hidden) return;
    fetch(location.pathname, { credentials: "same-origin" })
      .then(function (resp) { return resp.ok ? resp.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        marked.forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh) el.innerHTML = fresh.innerHTML;
        });
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      })
      .catch(function () {});
  }, 5000);
})();

(function () {
  var viewer = document.getElementById("viewer");
  if (!viewer) return;
  var stream = viewer.dataset.stream;
  var form = document.getElementById("viewer-form");
  var next = document.getElementById("v-next");
  var live = document.getElementById("v-live");
  var state = document.getElementById("v-state");
  var errBox = document.getElementById("v-error");
  var body = document.querySelector("#records tbody");
  var type = document.getElementById("v-type");
  var cursor = "";
  var rows = [];        // records shown, oldest first
  var maxRows = 1000;   // live mode keeps the newest this many
  var timer = null;
  var busy = false;

  function showInputs() {
    viewer.querySelector(".v-seq").hidden = type.value !== "AT_SEQUENCE_NUMBER";
    viewer.querySelector(".v-ts").hidden = type.value !== "AT_TIMESTAMP";
  }
  type.addEventListener("change", showInputs);
  showInputs();

  function format() {
    return viewer.querySelector("input[name=format]:checked").value;
  }

  function bytesOf(b64) {
    var s = atob(b64), out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  function hex(bytes) {
    var lines = [];
    for (var off = 0; off < bytes.length; off += 16) {
      var h = [], a = "";
      for (var i = off; i < off + 16 && i < bytes.length; i++) {
        h.push((bytes[i] < 16 ? "0" : "") + bytes[i].toString(16));
        a += bytes[i] >= 32 && bytes[i] < 127 ? String.fromCharCode(bytes[i]) : ".";
      }
      lines.push(("0000" + off.toString(16)).slice(-4) + "  " + (h.join(" ") + " ".repeat(48)).slice(0, 48) + " " + a);
    }
    return lines.join("\n");
  }

  function render(rec) {
    var bytes = bytesOf(rec.data);
    var text = new TextDecoder("utf-8").decode(bytes);
    switch (format()) {
    case "hex":
      return { cls: "hex", text: hex(bytes) };
    case "json":
      try {
        return { cls: "json", text: JSON.stringify(JSON.parse(text), null, 2) };
      } catch (e) {
        return { cls: "notjson", text: text + "\n(not JSON)" };
      }
    default:
      return { cls: "text", text: text };
    }
  }

  function draw() {
    body.textContent = "";
    rows.forEach(function (rec) {
      var tr = document.createElement("tr");
      tr.dataset.seq = rec.sequenceNumber;
      [rec.arrival, rec.shardId, rec.partitionKey, rec.sequenceNumber].forEach(function (v, i) {
        var td = document.createElement("td");
        td.textContent = v;
        if (i === 3) td.className = "hash";
        tr.appendChild(td);
      });
      var d = render(rec), td = document.createElement("td"), pre = document.createElement("pre");
      pre.className = "data " + d.cls;
      pre.textContent = d.text;
      td.appendChild(pre);
      tr.appendChild(td);
      body.appendChild(tr);
    });
  }
  viewer.querySelectorAll("input[name=format]").forEach(function (r) { r.addEventListener("change", draw); });

  function fail(msg) {
    errBox.textContent = msg;
    errBox.hidden = false;
    stopLive();
  }

  function fetchPage(params, append) {
    if (busy) return Promise.resolve();
    busy = true;
    params.set("limit", document.getElementById("v-limit").value || "25");
    return fetch("/console/api/streams/" + encodeURIComponent(stream) + "/records?" + params.toString(),
      { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (resp) { return resp.json().then(function (j) { return { ok: resp.ok, j: j }; }); })
      .then(function (res) {
        if (!res.ok) { fail(res.j.error.type + ": " + res.j.error.message); return; }
        errBox.hidden = true;
        rows = append ? rows.concat(res.j.records) : res.j.records;
        if (rows.length > maxRows) rows = rows.slice(rows.length - maxRows);
        cursor = res.j.cursor;
        next.disabled = res.j.ended;
        state.textContent = rows.length + " records shown" +
          (res.j.ended ? ", every shard read to its end" : ", " + res.j.millisBehindLatest + " ms behind the newest");
        viewer.dataset.loaded = String(Number(viewer.dataset.loaded || 0) + 1);
        draw();
      })
      .catch(function (e) { fail("Reading records failed: " + e); })
      .finally(function () { busy = false; });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var p = new URLSearchParams();
    ["shard", "type", "seq", "ts"].forEach(function (k) { p.set(k, form.elements[k].value); });
    fetchPage(p, false);
  });
  next.addEventListener("click", function () {
    if (cursor) fetchPage(new URLSearchParams({ cursor: cursor }), false);
  });

  function stopLive() {
    if (timer) clearInterval(timer);
    timer = null;
    live.checked = false;
  }
  live.addEventListener("change", function () {
    if (!live.checked) { stopLive(); return; }
    var tick = function () {
      if (cursor) fetchPage(new URLSearchParams({ cursor: cursor }), true);
      else form.requestSubmit();
    };
    tick();
    timer = setInterval(tick, 1000);
  });
})();
