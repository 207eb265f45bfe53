// Rhythm UI behaviour. No inline scripts (the CSP forbids them): everything is here.
(function () {
  "use strict";

  function csrf() { return document.body.dataset.csrf || ""; }

  function flash(message) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    box.textContent = message;
    box.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(function () { box.hidden = true; }, 6000);
  }

  function number(el) { return el ? el.dataset.number : ""; }

  function bump(list, delta) {
    var count = list.closest(".column").querySelector("[data-count]");
    if (count) { count.textContent = String(parseInt(count.textContent, 10) + delta); }
  }

  // Put a refused card back where it was.
  function snapBack(evt) {
    var from = evt.from, item = evt.item;
    var anchor = from.children[evt.oldIndex];
    if (from === evt.to && evt.newIndex < evt.oldIndex) { anchor = from.children[evt.oldIndex + 1]; }
    from.insertBefore(item, anchor || null);
  }

  function moved(board, evt) {
    var item = evt.item, list = evt.to;
    if (evt.from === list && evt.oldIndex === evt.newIndex) { return; }
    var body = new URLSearchParams();
    body.set("issue", number(item));
    body.set("status", list.dataset.stage);
    var next = item.nextElementSibling, prev = item.previousElementSibling;
    if (next) { body.set("before", number(next)); } else if (prev) { body.set("after", number(prev)); }
    fetch(board.dataset.moveUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" },
      body: body
    }).then(function (response) {
      if (response.ok) {
        if (evt.from !== list) { bump(evt.from, -1); bump(list, 1); }
        return;
      }
      return response.json().catch(function () { return {}; }).then(function (problem) {
        snapBack(evt);
        flash((problem && problem.detail) || ("The move was refused (" + response.status + ")"));
      });
    }).catch(function () {
      snapBack(evt);
      flash("The server could not be reached; the card was put back.");
    });
  }

  function initBoard(root) {
    var board = root.id === "board" ? root : (root.querySelector ? root.querySelector("#board") : null);
    if (!board || board.dataset.ready || typeof Sortable === "undefined") { return; }
    board.dataset.ready = "1";
    if (board.dataset.movable !== "true") { return; }
    board.querySelectorAll("ol.cards").forEach(function (list) {
      Sortable.create(list, {
        // with swim lanes a card moves between columns of its own lane only
        group: list.dataset.lane ? "lane-" + list.dataset.lane : "board",
        animation: 120,
        onEnd: function (evt) { moved(board, evt); }
      });
    });
  }

  // Live updates (SPEC §7): the org's WebSocket, authenticated by the session cookie.
  // An event for this page's project (or issue) re-fetches this page and swaps the
  // live parts in place with htmx; a card being dragged delays it.
  function live() {
    var body = document.body, org = body.dataset.liveOrg;
    if (!org || !window.WebSocket || !window.htmx) { return; }
    var parts = (body.dataset.liveParts || "").split(" ").filter(Boolean);
    var delay = 1000, timer = null;
    function refresh() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (document.querySelector(".sortable-chosen, .sortable-drag")) { refresh(); return; }
        parts.forEach(function (id) {
          var part = document.getElementById(id);
          // never wipe what the user is editing: that part waits for the next event
          if (part && !part.contains(document.activeElement) && !part.querySelector("details[open] form")) {
            htmx.ajax("GET", location.href, { target: "#" + id, select: "#" + id, swap: "outerHTML" });
          }
        });
      }, 150);
    }
    function connect() {
      var scheme = location.protocol === "https:" ? "wss:" : "ws:";
      var ws = new WebSocket(scheme + "//" + location.host + "/api/v1/orgs/" + encodeURIComponent(org) + "/ws");
      ws.onopen = function () {
        delay = 1000;
        ws.send(JSON.stringify({ type: "subscribe", project: body.dataset.liveProject }));
      };
      ws.onmessage = function (message) {
        var frame;
        try { frame = JSON.parse(message.data); } catch (e) { return; }
        if (frame.type === "subscribed") { body.dataset.liveReady = "1"; }
        var issue = body.dataset.liveIssue;
        if (frame.type === "resync" || (frame.type === "event" &&
            (!issue || (frame.issue && frame.issue.key === issue)))) { refresh(); }
      };
      ws.onclose = function (evt) {
        body.dataset.liveReady = "";
        if (evt.code === 4403 || evt.code === 4404) { return; }
        // 4401: the access cookie expired; any page request renews it, then reconnect
        var renew = evt.code === 4401 ? fetch(location.href, { credentials: "same-origin" }) : Promise.resolve();
        setTimeout(function () { renew.catch(function () {}).then(connect); }, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }
    connect();
  }

  document.addEventListener("DOMContentLoaded", function () {
    initBoard(document);
    live();
    if (window.htmx) {
      htmx.onLoad(initBoard);
      document.body.addEventListener("htmx:responseError", function (evt) {
        flash("Refused: " + evt.detail.xhr.status + " " + (evt.detail.xhr.statusText || ""));
      });
    }
    // "/" focuses search (or the board filter) unless the user is typing somewhere
    document.addEventListener("keydown", function (evt) {
      var tag = (evt.target.tagName || "").toLowerCase();
      if (evt.key !== "/" || tag === "input" || tag === "textarea" || tag === "select") { return; }
      var box = document.getElementById("board-filter") || document.getElementById("global-search");
      if (box) { evt.preventDefault(); box.focus(); }
    });
  });
})();
