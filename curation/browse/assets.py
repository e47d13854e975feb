"""The report's inline stylesheet and gallery script (no CDN: the page must open offline).

The script builds the gallery from the embedded JSON with DOM calls only (createElement,
textContent, setAttribute), never innerHTML, so captions and file names stay text whatever
they contain.
"""

CSS = """
:root { --fg: #1d2330; --muted: #667; --line: #dde1e8; --bg: #f6f7f9; --kept: #3a9d5d; --rej: #c9463d; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header, section { max-width: 1280px; margin: 0 auto; padding: 12px 20px; }
header h1 { margin: 8px 0 2px; font-size: 22px; }
h2 { font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
.muted, .note { color: var(--muted); }
svg text { font-size: 12px; fill: var(--fg); }
svg text.note { fill: var(--muted); font-size: 11px; }
svg .axis { stroke: #999; } svg .marker { stroke: #c9463d; stroke-width: 2; stroke-dasharray: 4 3; }
.notice { background: #fff3cd; border: 1px solid #e6c65c; padding: 8px 12px; border-radius: 6px; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.hists { display: flex; flex-wrap: wrap; gap: 12px; }
figure.hist { width: 398px; background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 0; padding: 8px; }
figure.hist figcaption { font-weight: 600; margin-bottom: 4px; }
figure.hist .empty { color: var(--muted); }
.controls { display: flex; gap: 10px; align-items: center; margin: 8px 0 12px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; margin-bottom: 14px; }
.card h3 { margin: 0 0 4px; font-size: 15px; display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.badge { font-size: 12px; padding: 1px 8px; border-radius: 10px; color: #fff; background: var(--kept); }
.badge.rejected { background: var(--rej); }
.strip { display: flex; gap: 6px; overflow-x: auto; padding: 6px 0; }
figure.thumb { margin: 0; flex: 0 0 auto; }
figure.thumb .frame { position: relative; line-height: 0; }
figure.thumb img { display: block; height: 120px; width: auto; border-radius: 3px; background: #ddd; }
figure.thumb svg.boxes { position: absolute; left: 0; top: 0; width: 100%; height: 100%; }
svg.boxes rect { fill: none; stroke-width: 2; vector-effect: non-scaling-stroke; }
svg.boxes rect.face { stroke: #ff9f1c; } svg.boxes rect.person { stroke: #2ec4f1; }
svg.boxes line.bone { stroke: #7bd389; stroke-width: 2; vector-effect: non-scaling-stroke; }
svg.boxes circle.joint { fill: #7bd389; }
svg.timeline { display: block; width: 100%; max-width: 640px; height: 18px; margin: 4px 0; }
svg.timeline rect.clip { fill: #e4e4e4; } svg.timeline rect.speech { fill: #3a86ff; }
svg.timeline rect.event { fill: #ff006e; opacity: 0.8; }
figure.thumb figcaption { font-size: 11px; color: var(--muted); line-height: 1.6; }
dl.kv { display: grid; grid-template-columns: 130px 1fr; gap: 2px 10px; margin: 6px 0; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
details { margin: 4px 0; } summary { cursor: pointer; color: #2a5db0; }
ol.pairs li { margin-bottom: 4px; } .q { font-weight: 600; } .kind { color: var(--muted); font-size: 11px; }
.legend span { margin-right: 12px; } .sw { display: inline-block; width: 10px; height: 10px; border: 2px solid; margin-right: 4px; }
"""

JS = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var SVGNS = "http://www.w3.org/2000/svg";
  var state = { page: 0, filter: "all" };
  var cards = document.getElementById("cards");
  var info = document.getElementById("page-info");
  var prev = document.getElementById("prev");
  var next = document.getElementById("next");
  var filter = document.getElementById("filter");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function num(x, digits) {
    return x === null || x === undefined ? "-" : Number(x).toFixed(digits);
  }
  function chosen() {
    return data.clips.filter(function (c) {
      if (state.filter === "kept") return c.kept;
      if (state.filter === "rejected") return !c.kept;
      if (state.filter === "faces") return c.faces > 0;
      if (state.filter === "speech") return c.signals.speech_s > 0;
      return true;
    });
  }
  function overlay(boxes) {
    var svg = document.createElementNS(SVGNS, "svg");
    svg.setAttribute("class", "boxes");
    svg.setAttribute("viewBox", "0 0 1 1");
    svg.setAttribute("preserveAspectRatio", "none");
    boxes.forEach(function (b) {
      var r = document.createElementNS(SVGNS, "rect");
      r.setAttribute("class", b[1] === "face" ? "face" : "person");
      r.setAttribute("x", b[2]);
      r.setAttribute("y", b[3]);
      r.setAttribute("width", Math.max(0, b[4] - b[2]));
      r.setAttribute("height", Math.max(0, b[5] - b[3]));
      var t = document.createElementNS(SVGNS, "title");
      t.textContent = b[1] + " " + num(b[6], 2);
      r.appendChild(t);
      svg.appendChild(r);
    });
    return svg;
  }
  function skeleton(points, bones, svg) {
    bones.forEach(function (b) {
      var p = points[b[0]], q = points[b[1]];
      if (!p || !q) return;
      var l = document.createElementNS(SVGNS, "line");
      l.setAttribute("class", "bone");
      l.setAttribute("x1", p[0]); l.setAttribute("y1", p[1]);
      l.setAttribute("x2", q[0]); l.setAttribute("y2", q[1]);
      svg.appendChild(l);
    });
    points.forEach(function (p) {
      if (!p) return;
      var dot = document.createElementNS(SVGNS, "circle");
      dot.setAttribute("class", "joint");
      dot.setAttribute("cx", p[0]); dot.setAttribute("cy", p[1]); dot.setAttribute("r", 0.008);
      svg.appendChild(dot);
    });
  }
  function timeline(s, duration) {
    var svg = document.createElementNS(SVGNS, "svg");
    svg.setAttribute("class", "timeline");
    svg.setAttribute("viewBox", "0 0 1 1");
    svg.setAttribute("preserveAspectRatio", "none");
    var bg = document.createElementNS(SVGNS, "rect");
    bg.setAttribute("class", "clip"); bg.setAttribute("width", 1); bg.setAttribute("height", 1);
    svg.appendChild(bg);
    s.segments.forEach(function (seg) {
      var r = document.createElementNS(SVGNS, "rect");
      r.setAttribute("class", "speech");
      r.setAttribute("x", seg[0] / duration); r.setAttribute("width", Math.max(0, seg[1] - seg[0]) / duration);
      r.setAttribute("height", 1);
      var t = document.createElementNS(SVGNS, "title");
      t.textContent = "speech " + num(seg[0], 2) + "–" + num(seg[1], 2) + " s";
      r.appendChild(t);
      svg.appendChild(r);
    });
    (s.events || []).forEach(function (e) {
      var r = document.createElementNS(SVGNS, "rect");
      r.setAttribute("class", "event");
      r.setAttribute("x", e[1] / duration); r.setAttribute("width", Math.max(0.004, (e[2] - e[1]) / duration));
      r.setAttribute("y", 0.5); r.setAttribute("height", 0.5);
      var t = document.createElementNS(SVGNS, "title");
      t.textContent = e[0] + " " + num(e[1], 2) + "–" + num(e[2], 2) + " s, person " + e[4];
      r.appendChild(t);
      svg.appendChild(r);
    });
    return svg;
  }
  function strip(c) {
    var row = el("div", "strip");
    c.thumbs.forEach(function (th) {
      var fig = el("figure", "thumb");
      var frame = el("div", "frame");
      var img = el("img");
      img.src = "thumbs/" + encodeURIComponent(th.src);
      img.alt = "frame at " + num(th.t, 2) + " s";
      frame.appendChild(img);
      var mine = c.boxes.filter(function (b) { return b[0] === th.frame; });
      var pose = (c.signals.poses || []).filter(function (p) { return Math.abs(p[0] - th.t) < 0.02; });
      if (mine.length || pose.length) {
        var svg = overlay(mine);
        if (pose.length) skeleton(pose[0][1], c.signals.skeleton, svg);
        frame.appendChild(svg);
      }
      fig.appendChild(frame);
      fig.appendChild(el("figcaption", null, num(th.t, 2) + " s"));
      row.appendChild(fig);
    });
    if (!c.thumbs.length) row.appendChild(el("p", "muted", "no thumbnails: the clip could not be decoded"));
    return row;
  }
  function kv(list, label, value) {
    if (value === null || value === undefined || value === "") return;
    list.appendChild(el("dt", null, label));
    list.appendChild(el("dd", null, value));
  }
  function link(label, href) {
    var a = el("a", null, label);
    a.href = href;
    return a;
  }
  function card(c) {
    var box = el("article", "card");
    box.id = "clip-" + c.id;
    var h = el("h3");
    h.appendChild(el("code", null, c.id));
    h.appendChild(el("span", c.kept ? "badge" : "badge rejected",
      c.kept ? "kept (reached " + c.stage + ")" : "rejected at " + c.stage + ": " + c.reason));
    box.appendChild(h);
    var meta = el("div", "muted");
    meta.appendChild(el("span", "mono source", c.source));
    meta.appendChild(document.createTextNode(
      " · " + num(c.start, 2) + "–" + num(c.end, 2) + " s (" + num(c.duration, 2) + " s) · " +
      c.size[0] + "×" + c.size[1] + " · " + (c.keyframes === null ? "-" : c.keyframes) + " keyframes" +
      (c.sampled ? " · faces in " + c.faces + "/" + c.sampled + ", persons in " + c.persons + "/" + c.sampled + " frames" : "")));
    box.appendChild(meta);
    box.appendChild(strip(c));
    var s = c.signals;
    if (s.speech_s !== undefined) {
      if (c.duration) box.appendChild(timeline(s, c.duration));
      box.appendChild(el("div", "muted", "speech " + num(s.speech_s, 2) + " s · lip sync " +
        (s.lip_sync === null ? "-" : num(s.lip_sync, 2) + " at " + (s.offset >= 0 ? "+" : "") + num(s.offset, 2) + " s") +
        " · framing " + s.framing + " · pose visible " + num(s.pose_visible, 2)));
    }
    var list = el("dl", "kv");
    kv(list, "rejected because", c.detail);
    kv(list, "transcript", s.transcript);
    kv(list, "events", (s.events || []).map(function (e) {
      return e[0] + " " + num(e[1], 2) + "–" + num(e[2], 2) + " s (person " + e[4] + ", " + num(e[3], 2) + ")";
    }).join("; ") || null);
    kv(list, "brief caption", c.brief);
    c.candidates.forEach(function (x) { kv(list, "candidate " + x.model, x.text !== null ? x.text : "(none: " + x.error + ")"); });
    kv(list, "consensus", c.consensus);
    kv(list, "agreement", c.agreement === null ? null : num(c.agreement, 3));
    kv(list, "duplicate of", c.duplicate_of ? c.duplicate_of + " (similarity " + num(c.similarity, 3) + ")" : null);
    kv(list, "source file", c.path);
    box.appendChild(list);
    if (c.fields.length) {
      var fd = el("details");
      fd.appendChild(el("summary", null, "structured fields (" + c.fields.length + ")"));
      var fl = el("dl", "kv");
      c.fields.forEach(function (f) { kv(fl, f[0], f[1]); });
      fd.appendChild(fl);
      box.appendChild(fd);
    }
    Object.keys(c.pairs).forEach(function (branch) {
      var d = el("details", "branch");
      d.appendChild(el("summary", null, "instructions: " + branch + " (" + c.pairs[branch].length + " pairs)"));
      var ol = el("ol", "pairs");
      c.pairs[branch].forEach(function (p) {
        var li = el("li");
        li.appendChild(el("span", "q", p[0]));
        li.appendChild(el("span", "kind", " [" + p[2] + "]"));
        li.appendChild(el("div", "a", p[1]));
        ol.appendChild(li);
      });
      d.appendChild(ol);
      box.appendChild(d);
    });
    var links = el("div", "links");
    if (c.clip_href) links.appendChild(link("clip file", c.clip_href));
    if (c.clip_href && c.source_href) links.appendChild(document.createTextNode(" · "));
    if (c.source_href) links.appendChild(link("source file", c.source_href));
    box.appendChild(links);
    return box;
  }
  function render() {
    var list = chosen();
    var pages = Math.max(1, Math.ceil(list.length / data.page_size));
    state.page = Math.min(Math.max(state.page, 0), pages - 1);
    var start = state.page * data.page_size;
    cards.replaceChildren();
    list.slice(start, start + data.page_size).forEach(function (c) { cards.appendChild(card(c)); });
    if (!list.length) cards.appendChild(el("p", "muted", "no clips here"));
    info.textContent = "page " + (state.page + 1) + " of " + pages + " · " + list.length + " clips" +
      (data.total > data.clips.length ? " (gallery holds " + data.clips.length + " of " + data.total + ")" : "");
    prev.disabled = state.page === 0;
    next.disabled = state.page >= pages - 1;
  }
  prev.addEventListener("click", function () { state.page -= 1; render(); });
  next.addEventListener("click", function () { state.page += 1; render(); });
  filter.addEventListener("change", function () { state.filter = filter.value; state.page = 0; render(); });
  render();
})();
"""
