"""A self-contained ``report.html`` for one evaluation or a comparison: a person looks at it instead of reading JSON.

At the top, the per-category table (a comparison's values, differences and intervals). Below, one card per sample:
the prompt, its category, and for each evaluation side by side the image, the verdict, the score, every reward and
the reasoning. Filters: category, status and a text search; with two or more evaluations the status compares the
first (baseline) with the last: ``fixed`` (wrong -> right), ``broken`` (right -> wrong), ``still wrong``,
``still right``; with one: ``right`` / ``wrong``. The filters live in the URL fragment too
(``report.html#category=counting&status=fixed``), so a filtered view can be shared.

Readable with thousands of samples: the data sit in one JSON block and cards are built 60 at a time as the reader
scrolls (an ``IntersectionObserver``), so the page never holds thousands of images at once. Small images (at most
``embed_max_side`` pixels, e.g. the shapes world's 64x64) are embedded as PNG data URIs (a few hundred bytes each);
larger ones are linked as the files beside the evaluation (relative paths), so the file stays small either way.
Samples are paired across evaluations by prompt and occurrence (the k-th sample of a prompt in each).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ..jsonable import jsonable
from .evaluate import EvalResult

PAGE_SIZE = 60


def _image_src(result: EvalResult, row: dict, report_dir: Path, embed_max_side: int) -> str | None:
    if result.folder is None:
        return None
    path = Path(result.folder) / row["image"]
    if not path.exists():
        return None
    with Image.open(path) as image:
        if max(image.size) <= embed_max_side:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=True)
            return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return Path(os.path.relpath(path, report_dir)).as_posix()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _status(cells: list[dict | None]) -> str:
    if len(cells) == 1:
        return "right" if cells[0]["correct"] else "wrong"
    first, last = cells[0], cells[-1]
    if first is None or last is None:
        return "unpaired"
    return {
        (False, True): "fixed",
        (True, False): "broken",
        (False, False): "still wrong",
        (True, True): "still right",
    }[(bool(first["correct"]), bool(last["correct"]))]


def report_data(evaluations: Sequence[EvalResult], report_dir: Path, embed_max_side: int = 128) -> dict[str, Any]:
    """The JSON the page renders: evaluations, summary table and one item per paired sample."""
    keyed: list[dict[tuple, dict]] = []
    order: list[tuple] = []
    for result in evaluations:
        seen: dict[str, int] = {}
        cells = {}
        for row in result.rows:
            k = seen.get(row["prompt"], 0)
            seen[row["prompt"]] = k + 1
            key = (row["prompt"], k)
            cells[key] = {
                "img": _image_src(result, row, report_dir, embed_max_side),
                "correct": bool(row["correct"]),
                "score": _number(row.get("score")),
                "switched": bool(row.get("switched")),
                "reasoning": row.get("reasoning", ""),
                "rewards": {name: _number(v) for name, v in row.get("rewards", {}).items()},
                "errors": row.get("reward_errors") or [],
                "category": row["category"],
            }
        keyed.append(cells)
        order += [key for key in cells if all(key not in earlier for earlier in keyed[:-1])]
    items = []
    for key in order:
        cells = [table.get(key) for table in keyed]
        category = next(c["category"] for c in cells if c is not None)
        items.append({"prompt": key[0], "category": category, "status": _status(cells), "cells": cells})
    summary = None
    if len(evaluations) >= 2:
        from .compare import compare_evaluations

        summary = compare_evaluations(evaluations).to_dict()
    categories = list(dict.fromkeys(item["category"] for item in items))
    statuses = list(dict.fromkeys(item["status"] for item in items))
    return {
        "evaluations": [
            {"name": e.name, "mode": e.mode, "metric": e.metric, "threshold": e.threshold, "summary": e.summary()}
            for e in evaluations
        ],
        "comparison": summary,
        "categories": categories,
        "statuses": statuses,
        "items": items,
    }


def write_report(
    evaluations: Sequence[EvalResult], path: str | Path, title: str | None = None, embed_max_side: int = 128
) -> Path:
    """Write the report of one evaluation or a comparison (the first is the baseline) to ``path``."""
    if not evaluations:
        raise ValueError("write_report needs at least one evaluation")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = jsonable(report_data(evaluations, path.parent.resolve(), embed_max_side))
    title = title or " vs ".join(e.name for e in evaluations)
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    page = (
        _PAGE.replace("__TITLE__", html.escape(title))
        .replace("__DATA__", payload)
        .replace("__PAGE_SIZE__", str(PAGE_SIZE))
    )
    path.write_text(page, encoding="utf-8")
    return path


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 20px}
header h1{font-size:19px;margin:0}
header .sub{font-size:13px;color:#b9c0cf;margin-top:3px}
main{padding:12px 20px}
table.summary{border-collapse:collapse;background:#fff;font-size:13px;margin-bottom:12px}
table.summary th,table.summary td{border:1px solid #d9dde5;padding:4px 8px;text-align:right;white-space:nowrap}
table.summary th:first-child,table.summary td:first-child{text-align:left}
.sig{font-weight:700}
.pos{color:#17803a}.neg{color:#c2261f}
.controls{position:sticky;top:0;background:#f4f5f7;padding:8px 0;z-index:2;display:flex;gap:12px;align-items:center;
 flex-wrap:wrap;border-bottom:1px solid #d9dde5;margin-bottom:10px}
.controls label{font-size:13px}
.controls select,.controls input{font-size:13px;padding:3px}
#count{font-size:13px;color:#555}
.card{background:#fff;border:1px solid #d9dde5;border-radius:6px;margin-bottom:10px;padding:8px 10px}
.card .head{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap;margin-bottom:6px}
.prompt{font-weight:600;font-size:15px}
.tag{font-size:11px;border-radius:10px;padding:1px 8px;background:#e7eaf0;color:#333}
.status-fixed{background:#d4f3dc;color:#17803a}.status-broken{background:#fbd9d6;color:#c2261f}
.status-still-wrong{background:#f6e7c8;color:#8a5a00}.status-still-right,.status-right{background:#e1efe5}
.status-wrong{background:#fbd9d6}
.cells{display:grid;gap:10px}
.cell{display:flex;gap:8px;border-left:4px solid #999;padding-left:6px}
.cell.ok{border-color:#28b44a}.cell.bad{border-color:#e0352b}
.cell img{width:128px;height:128px;image-rendering:pixelated;background:#000;flex:none}
.meta{font-size:12px;min-width:0}
.meta .name{font-weight:600}
.meta pre{white-space:pre-wrap;word-break:break-word;max-height:110px;overflow:auto;background:#f7f8fa;margin:4px 0 0;
 padding:4px;font-size:12px}
.verdict.ok{color:#17803a;font-weight:700}.verdict.bad{color:#c2261f;font-weight:700}
#sentinel{height:40px}
</style></head>
<body>
<header><h1>__TITLE__</h1><div class="sub" id="sub"></div></header>
<main>
<div id="summary"></div>
<div class="controls">
 <label>category <select id="f-category"><option value="">all</option></select></label>
 <label>status <select id="f-status"><option value="">all</option></select></label>
 <label>search <input id="f-search" type="search" placeholder="prompt or reasoning"></label>
 <span id="count"></span>
</div>
<div id="list"></div>
<div id="sentinel"></div>
</main>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const PAGE = __PAGE_SIZE__;
const E = DATA.evaluations;
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c]));
const pct = (v, signed) => v === null || v === undefined ? "n/a" : (signed && v >= 0 ? "+" : "") + (100 * v).toFixed(1);
const num = v => v === null || v === undefined ? "n/a" : v.toFixed(3);

document.getElementById("sub").textContent = E.map(e => `${e.name} (${e.mode}, ${e.summary.num_samples} samples, ` +
  `metric ${e.metric} >= ${e.threshold})`).join("  |  ");

function summaryTable() {
  let h = "<table class='summary'><tr><th>category</th>";
  if (DATA.comparison) {
    const C = DATA.comparison, names = C.evaluations;
    h += names.map(n => `<th>${esc(n)}: accuracy %</th>`).join("") +
         names.slice(1).map(n => `<th>${esc(n)} − ${esc(names[0])}</th>`).join("") + "</tr>";
    for (const c of C.categories) {
      h += `<tr><td>${esc(c.category)}</td>` + names.map(n => { const v = c.values[n];
        return `<td>${pct(v.estimate)} [${pct(v.low)}, ${pct(v.high)}] n=${v.n}</td>`; }).join("");
      h += names.slice(1).map(n => { const d = c.differences[n];
        const cls = d.excludes_zero ? ("sig " + (d.estimate > 0 ? "pos" : "neg")) : "";
        return `<td class="${cls}">${pct(d.estimate, 1)} [${pct(d.low, 1)}, ${pct(d.high, 1)}]${d.excludes_zero ? " *" : ""}</td>`;
      }).join("") + "</tr>";
    }
    h += "</table><div style='font-size:12px;color:#555;margin:-8px 0 10px'>95% intervals (Wilson; differences: " +
         "Newcombe). * : the difference's interval excludes zero.</div>";
  } else {
    const s = E[0].summary;
    h += "<th>n</th><th>accuracy % [95% interval]</th><th>mean score</th><th>switch rate</th><th>reasoning tokens</th></tr>";
    const rows = Object.values(s.categories).concat([s.overall]);
    for (const c of rows) {
      h += `<tr><td>${esc(c.category)}</td><td>${c.num_samples}</td><td>${pct(c.accuracy.estimate)} ` +
           `[${pct(c.accuracy.low)}, ${pct(c.accuracy.high)}]</td><td>${num(c.score.estimate)}</td>` +
           `<td>${c.switch_rate === null ? "n/a" : pct(c.switch_rate)}</td><td>${c.mean_reasoning_tokens.toFixed(1)}</td></tr>`;
    }
    h += "</table>";
  }
  document.getElementById("summary").innerHTML = h;
}

function fillSelect(id, values) {
  const sel = document.getElementById(id);
  for (const v of values) { const o = document.createElement("option"); o.value = v; o.textContent = v; sel.appendChild(o); }
}

function cellHtml(cell, j) {
  const e = E[j];
  if (!cell) return `<div class="cell"><div class="meta"><span class="name">${esc(e.name)}</span>: no sample</div></div>`;
  const rewards = Object.entries(cell.rewards).map(([k, v]) => `${esc(k)} ${num(v)}`).join(" · ");
  const img = cell.img ? `<img loading="lazy" src="${esc(cell.img)}" alt="${esc(e.name)} image">` : "<div>(no image)</div>";
  return `<div class="cell ${cell.correct ? "ok" : "bad"}">${img}<div class="meta">` +
    `<div><span class="name">${esc(e.name)}</span> <span class="verdict ${cell.correct ? "ok" : "bad"}">` +
    `${cell.correct ? "✓ right" : "✗ wrong"}</span> score ${num(cell.score)}${cell.switched ? " · switched" : ""}</div>` +
    `<div>${rewards}</div>${cell.errors.length ? `<div class="neg">${esc(cell.errors.join("; "))}</div>` : ""}` +
    `<pre>${cell.reasoning ? esc(cell.reasoning) : "<i>(no reasoning)</i>"}</pre></div></div>`;
}

let shown = [], rendered = 0;
function filters() {
  return {category: document.getElementById("f-category").value, status: document.getElementById("f-status").value,
          search: document.getElementById("f-search").value.toLowerCase()};
}
function apply() {
  const f = filters();
  shown = DATA.items.filter(it => (!f.category || it.category === f.category) && (!f.status || it.status === f.status) &&
    (!f.search || it.prompt.toLowerCase().includes(f.search) ||
     it.cells.some(c => c && c.reasoning.toLowerCase().includes(f.search))));
  document.getElementById("list").innerHTML = "";
  rendered = 0;
  more();
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) params.set(k, v);
  history.replaceState(null, "", params.toString() ? "#" + params.toString() : location.pathname);
}
function more() {
  const list = document.getElementById("list");
  const cols = `repeat(${Math.min(E.length, 3)}, minmax(0, 1fr))`;
  let h = "";
  for (const it of shown.slice(rendered, rendered + PAGE)) {
    h += `<div class="card" data-category="${esc(it.category)}" data-status="${esc(it.status)}"><div class="head">` +
      `<span class="prompt">${esc(it.prompt)}</span><span class="tag">${esc(it.category)}</span>` +
      `<span class="tag status-${it.status.replace(" ", "-")}">${esc(it.status)}</span></div>` +
      `<div class="cells" style="grid-template-columns:${cols}">${it.cells.map(cellHtml).join("")}</div></div>`;
  }
  list.insertAdjacentHTML("beforeend", h);
  rendered = Math.min(shown.length, rendered + PAGE);
  document.getElementById("count").textContent = `showing ${rendered} of ${shown.length} samples (${DATA.items.length} in all)`;
}

summaryTable();
fillSelect("f-category", DATA.categories);
fillSelect("f-status", DATA.statuses);
const initial = new URLSearchParams(location.hash.slice(1));
for (const k of ["category", "status", "search"]) if (initial.get(k)) document.getElementById("f-" + k).value = initial.get(k);
for (const id of ["f-category", "f-status"]) document.getElementById(id).addEventListener("change", apply);
document.getElementById("f-search").addEventListener("input", apply);
new IntersectionObserver(entries => { if (entries[0].isIntersecting && rendered < shown.length) more(); })
  .observe(document.getElementById("sentinel"));
apply();
</script></body></html>
"""


__all__ = ["report_data", "write_report"]
