// The template editor's live preview (ticketing/console/template_pages.py).
// Plain JavaScript, no libraries; the page works without it (the Preview button
// submits the form). With it: typing posts the source (debounced) to
// /templates/preview with the X-CSRF-Token header, and the answer's problems,
// preview and verdict replace the page's; the gutter marks the lines with problems.
(function () {
  "use strict";

  var form = document.getElementById("template-form");
  var source = document.getElementById("template-source");
  var gutter = document.getElementById("source-gutter");
  if (!form || !source) {
    return;
  }
  var tokenTag = document.querySelector('meta[name="csrf-token"]');
  var token = tokenTag ? tokenTag.getAttribute("content") : "";
  var DELAY_MS = 400;
  var timer = null;
  var latest = 0; // only the answer to the last request is shown

  function badLines() {
    var problems = document.getElementById("source-problems");
    var text = problems ? problems.getAttribute("data-lines") || "" : "";
    return text.split(" ").filter(Boolean).map(Number);
  }

  // One number a line of the source, the lines with problems marked.
  function paintGutter() {
    if (!gutter) {
      return;
    }
    var count = source.value.split("\n").length;
    var bad = badLines();
    gutter.textContent = "";
    for (var n = 1; n <= count; n += 1) {
      var label = String(n);
      if (bad.indexOf(n) >= 0) {
        var mark = document.createElement("mark");
        mark.textContent = label;
        gutter.appendChild(mark);
      } else {
        gutter.appendChild(document.createTextNode(label));
      }
      gutter.appendChild(document.createTextNode("\n"));
    }
    gutter.scrollTop = source.scrollTop;
  }

  // The answer's sections replace the page's, inside the same (live) elements.
  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    ["source-problems", "preview", "verdict"].forEach(function (id) {
      var now = document.getElementById(id);
      var next = fresh.getElementById(id);
      if (now && next) {
        now.innerHTML = next.innerHTML;
        if (next.hasAttribute("data-lines")) {
          now.setAttribute("data-lines", next.getAttribute("data-lines"));
        }
      }
    });
    paintGutter();
  }

  function preview() {
    var mine = ++latest;
    var body = new URLSearchParams(new FormData(form));
    fetch("/templates/preview", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": token, "X-Fragment": "preview" },
      body: body,
    })
      .then(function (answer) {
        return answer.text();
      })
      .then(function (html) {
        if (mine === latest) {
          swap(html);
        }
      })
      .catch(function () {
        var verdict = document.getElementById("verdict");
        if (mine === latest && verdict) {
          verdict.textContent = "The preview could not be fetched; press Preview.";
        }
      });
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(preview, DELAY_MS);
  }

  // "line N" in the problems selects that line of the source.
  function selectLine(line) {
    var lines = source.value.split("\n");
    var start = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i += 1) {
      start += lines[i].length + 1;
    }
    var end = start + (lines[line - 1] || "").length;
    source.focus();
    source.setSelectionRange(start, end);
  }

  source.addEventListener("input", function () {
    paintGutter();
    later();
  });
  source.addEventListener("scroll", function () {
    if (gutter) {
      gutter.scrollTop = source.scrollTop;
    }
  });
  var incident = document.getElementById("incident");
  if (incident) {
    incident.addEventListener("input", later);
  }
  var button = document.getElementById("preview-button");
  if (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      preview();
    });
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.goto-line") : null;
    if (link) {
      event.preventDefault();
      selectLine(Number(link.getAttribute("data-line")));
    }
  });
})();
