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
    var board = root.querySelector ? root.querySelector("#board") : null;
    if (!board || board.dataset.ready || typeof Sortable === "undefined") { return; }
    board.dataset.ready = "1";
    if (board.dataset.movable !== "true") { return; }
    board.querySelectorAll("ol.cards").forEach(function (list) {
      Sortable.create(list, {
        group: "board",
        animation: 120,
        onEnd: function (evt) { moved(board, evt); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    initBoard(document);
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
