// The HTML the monitoring port serves: the index at the base path (links to every endpoint, as
// nats-server's root page has) and the live page, which polls /skeinz once a second and draws
// this server, its threads and its cluster with rates computed from two snapshots. Everything
// is inline: no external script, style, font or icon (the page must work on a host without a
// network, and a browser must log no error loading it).

const ENDPOINTS: [string, string][] = [
  ['General', '/varz'],
  ['Connections', '/connz'],
  ['Accounts', '/accountz'],
  ['Subscriptions', '/subsz'],
  ['Routes', '/routez'],
  ['LeafNodes', '/leafz'],
  ['Gateways', '/gatewayz'],
  ['Health Probe', '/healthz'],
  ['Metrics (Prometheus)', '/metrics'],
  ['Live', '/live'],
];

const ICON = '<link rel="icon" href="data:,">';

/**
 * The index. Links are relative to the base path as nats-server writes them (`./varz` at `/`,
 * `./mon/varz` at `/mon`), so the page works behind a proxy that maps the base path.
 */
export function indexPage(base: string): string {
  const join = (p: string): string => (base === '/' ? p : `${base}${p}`);
  const links = ENDPOINTS.map(
    ([label, p], i) => `    <a href=".${join(p)}"${i === ENDPOINTS.length - 1 ? ' class="last"' : ''}>${label}</a>`,
  ).join('\n');
  return `<!doctype html>
<html lang="en">
  <head>
  <meta charset="utf-8">
  <title>skein monitoring</title>
  ${ICON}
  <style>
    body { font-family: ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; font-size: 18px; margin-left: 32px }
    h1 { font-weight: 600; color: rgb(40 40 60) }
    a { display: block; margin-left: 7px; padding-bottom: 6px; color: rgb(72 72 92); text-decoration: none }
    a:hover { font-weight: 600; color: rgb(59 50 202) }
    a.last { padding-bottom: 16px }
  </style>
  </head>
  <body>
    <h1>skein</h1>
${links}
  </body>
</html>
`;
}

export function livePage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>skein · live</title>
${ICON}
<style>
  :root { --bg: #0f1419; --panel: #171e26; --line: #273240; --text: #d7dee7; --dim: #8593a3; --accent: #4fb3ff; --in: #58d68d; --out: #f5b041; --warn: #ec7063; }
  * { box-sizing: border-box }
  body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.4 ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif }
  header { display: flex; align-items: baseline; gap: 16px; padding: 16px 24px; border-bottom: 1px solid var(--line) }
  header h1 { margin: 0; font-size: 20px; font-weight: 600 }
  header .id { color: var(--dim); font-family: ui-monospace, Menlo, monospace; font-size: 12px }
  .badge { border: 1px solid var(--line); border-radius: 10px; padding: 1px 8px; color: var(--dim); font-size: 12px }
  #status { width: 10px; height: 10px; border-radius: 50%; background: var(--dim); display: inline-block }
  #status.ok { background: var(--in) } #status.err { background: var(--warn) }
  main { padding: 16px 24px; display: grid; grid-template-columns: minmax(0, 1fr); gap: 16px }
  /* Grid items may not shrink below their content by default: a wide table would push its
     panel (and the page) past the header. It scrolls inside its panel instead. */
  section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; min-width: 0; overflow-x: auto }
  section h2 { margin: 0 0 10px; font-size: 13px; text-transform: uppercase; letter-spacing: .08em; color: var(--dim); font-weight: 600 }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px }
  .card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px }
  .card .v { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums }
  .card .k { color: var(--dim); font-size: 12px }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums }
  th, td { text-align: right; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap }
  th { color: var(--dim); font-weight: 500; font-size: 12px }
  th:first-child, td:first-child, td.l, th.l { text-align: left }
  .bar { display: inline-block; height: 6px; border-radius: 3px; vertical-align: middle; margin-left: 6px }
  .in { color: var(--in) } .out { color: var(--out) } .dim { color: var(--dim) } .warn { color: var(--warn) }
  #topology { width: 100%; height: 360px }
  #topology text { fill: var(--text); font-size: 12px }
  #topology .rate { fill: var(--dim); font-size: 11px }
  .grid2 { display: grid; grid-template-columns: minmax(240px, 340px) minmax(0, 1fr); gap: 16px; align-items: start }
  .grid2 > * { min-width: 0 }
  .scroll { overflow-x: auto }
  @media (max-width: 900px) { .grid2 { grid-template-columns: minmax(0, 1fr) } }
  footer { padding: 8px 24px 24px; color: var(--dim); font-size: 12px }
  footer a { color: var(--accent); margin-right: 12px; text-decoration: none }
  #spark { width: 100%; height: 60px }
</style>
</head>
<body>
<header>
  <span id="status" title="polling"></span>
  <h1 id="name">skein</h1>
  <span class="id" id="sid"></span>
  <span class="badge" id="version"></span>
  <span class="badge" id="clustername"></span>
  <span class="badge" id="uptime"></span>
</header>
<main>
  <section id="server">
    <h2>This server</h2>
    <div class="cards" id="cards"></div>
    <svg id="spark" viewBox="0 0 600 60" preserveAspectRatio="none"></svg>
  </section>
  <section id="workers">
    <h2>Threads</h2>
    <table><thead><tr>
      <th class="l">thread</th><th class="l">kind</th><th>connections</th><th>subscriptions</th>
      <th>msgs in/s</th><th>msgs out/s</th><th>cross-thread out/s</th><th>cross-thread in/s</th>
      <th>ring backlog</th><th>stalls</th><th>ring full</th>
    </tr></thead><tbody id="threadrows"></tbody></table>
  </section>
  <section id="cluster">
    <h2>Cluster <span id="clusterlabel" class="dim"></span></h2>
    <div class="grid2">
      <svg id="topology" viewBox="0 0 420 360"></svg>
      <div class="scroll"><table><thead><tr>
        <th class="l">server</th><th class="l">id</th><th class="l">route</th><th>rtt</th>
        <th>msgs in/s</th><th>msgs out/s</th><th>bytes in/s</th><th>bytes out/s</th><th>subs</th>
      </tr></thead><tbody id="serverrows"></tbody></table></div>
    </div>
  </section>
  <section id="leafnodes">
    <h2>Leaf nodes</h2>
    <table><thead><tr>
      <th class="l">peer</th><th class="l">side</th><th class="l">address</th><th>rtt</th>
      <th>msgs in/s</th><th>msgs out/s</th><th>bytes in/s</th><th>bytes out/s</th><th>subs</th>
    </tr></thead><tbody id="leafrows"></tbody></table>
    <div id="noleafs" class="dim">No leaf connections.</div>
  </section>
  <section id="supercluster">
    <h2>Supercluster</h2>
    <div id="gateways" class="dim">No gateways: this server is not part of a supercluster.</div>
  </section>
</main>
<footer>
  <a href="./varz">varz</a><a href="./connz">connz</a><a href="./routez">routez</a><a href="./subsz">subsz</a>
  <a href="./gatewayz">gatewayz</a><a href="./leafz">leafz</a><a href="./accountz">accountz</a>
  <a href="./healthz">healthz</a><a href="./metrics">metrics</a><a href="./skeinz">skeinz (this page's data)</a>
  <span id="updated"></span>
</footer>
<script>
"use strict";
(function () {
  var prev = null;
  var history = [];
  var SVG = "http://www.w3.org/2000/svg";

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function num(n) {
    if (n >= 1e9) return (n / 1e9).toFixed(2) + "G";
    if (n >= 1e6) return (n / 1e6).toFixed(2) + "M";
    if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return String(Math.round(n));
  }
  function bytes(n) {
    if (n >= 1 << 30) return (n / (1 << 30)).toFixed(2) + " GiB";
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
    if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
    return Math.round(n) + " B";
  }
  function rate(cur, old, key, dt) {
    if (!old || dt <= 0) return 0;
    return Math.max(0, (cur[key] - old[key]) / dt);
  }
  function card(k, v, cls) {
    var c = el("div", { "class": "card" });
    c.appendChild(el("div", { "class": "v" + (cls ? " " + cls : "") }, v));
    c.appendChild(el("div", { "class": "k" }, k));
    return c;
  }
  function td(text, cls) { return el("td", cls ? { "class": cls } : null, text); }

  function render(s) {
    var dt = prev ? (s.now_ms - prev.now_ms) / 1000 : 0;
    var srv = s.server, ps = prev ? prev.server : null;
    document.getElementById("name").textContent = "skein \\u00b7 " + srv.server_name;
    document.title = "skein \\u00b7 " + srv.server_name;
    document.getElementById("sid").textContent = srv.server_id;
    document.getElementById("version").textContent = "skein " + srv.skein_version + " \\u00b7 nats " + srv.protocol_version;
    document.getElementById("clustername").textContent = srv.cluster ? "cluster " + srv.cluster : "no cluster";
    document.getElementById("uptime").textContent = "up " + srv.uptime;

    var inRate = rate(srv, ps, "in_msgs", dt), outRate = rate(srv, ps, "out_msgs", dt);
    var cards = document.getElementById("cards");
    cards.replaceChildren(
      card("connections", num(srv.connections)),
      card("subscriptions", num(srv.subscriptions)),
      card("msgs in/s", num(inRate), "in"),
      card("msgs out/s", num(outRate), "out"),
      card("bytes in/s", bytes(rate(srv, ps, "in_bytes", dt)), "in"),
      card("bytes out/s", bytes(rate(srv, ps, "out_bytes", dt)), "out"),
      card("slow consumers", num(srv.slow_consumers), srv.slow_consumers > 0 ? "warn" : ""),
      card("routes", num(srv.routes)),
      card("memory (RSS)", bytes(srv.mem)),
      card("CPU (% of a core)", String(srv.cpu)),
      card("worker threads", String(srv.workers))
    );
    if (prev) {
      history.push([inRate, outRate]);
      if (history.length > 120) history.shift();
    }
    drawSpark();

    var prevThreads = {};
    if (prev) prev.threads.forEach(function (t) { prevThreads[t.thread] = t; });
    var maxRate = 1;
    var rows = s.threads.map(function (t) {
      var p = prevThreads[t.thread];
      var r = { t: t, in: rate(t, p, "in_msgs", dt), out: rate(t, p, "out_msgs", dt), cs: rate(t, p, "cross_sent", dt), cr: rate(t, p, "cross_received", dt) };
      maxRate = Math.max(maxRate, r.in, r.out);
      return r;
    });
    var body = document.getElementById("threadrows");
    body.replaceChildren.apply(body, rows.map(function (r) {
      var tr = el("tr", { "data-thread": String(r.t.thread) });
      tr.appendChild(td(String(r.t.thread) + (r.t.alive ? "" : " (restarting)"), r.t.alive ? "" : "warn"));
      tr.appendChild(td(r.t.kind === "route" ? "routes" : r.t.kind === "gateway" ? "gateways" : r.t.kind === "leaf" ? "leafs" : "clients", "l"));
      tr.appendChild(td(num(r.t.connections)));
      tr.appendChild(td(num(r.t.subscriptions)));
      var tin = td(num(r.in), "in");
      tin.appendChild(el("span", { "class": "bar", style: "background:var(--in);width:" + Math.round(60 * r.in / maxRate) + "px" }));
      tr.appendChild(tin);
      var tout = td(num(r.out), "out");
      tout.appendChild(el("span", { "class": "bar", style: "background:var(--out);width:" + Math.round(60 * r.out / maxRate) + "px" }));
      tr.appendChild(tout);
      tr.appendChild(td(num(r.cs)));
      tr.appendChild(td(num(r.cr)));
      tr.appendChild(td(bytes(r.t.ring_backlog_bytes)));
      tr.appendChild(td(num(r.t.stalls), r.t.stalls > 0 ? "warn" : ""));
      tr.appendChild(td(num(r.t.ring_full)));
      return tr;
    }));

    renderCluster(s, prev, dt);
    renderLeafs(s, prev, dt);
    renderGateways(s, prev, dt);
    document.getElementById("updated").textContent = "updated " + new Date(s.now_ms).toLocaleTimeString();
  }

  function drawSpark() {
    var svg = document.getElementById("spark");
    svg.replaceChildren();
    if (history.length < 2) return;
    var max = 1;
    history.forEach(function (h) { max = Math.max(max, h[0], h[1]); });
    [0, 1].forEach(function (i) {
      var pts = history.map(function (h, k) {
        return (k * 600 / 119).toFixed(1) + "," + (58 - 54 * h[i] / max).toFixed(1);
      }).join(" ");
      svg.appendChild(sv("polyline", { points: pts, fill: "none", stroke: i === 0 ? "#58d68d" : "#f5b041", "stroke-width": "1.5" }));
    });
  }

  function renderGateways(s, old, dt) {
    var box = document.getElementById("gateways");
    var list = s.gateways || [];
    if (list.length === 0) {
      box.className = "dim";
      box.textContent = s.gateway_name ? "Gateway " + s.gateway_name + ": no gateway connection yet." : "No gateways: this server is not part of a supercluster.";
      return;
    }
    box.className = "";
    var prevRows = {};
    if (old && old.gateways) old.gateways.forEach(function (g) { prevRows[g.direction + g.cid] = g; });
    var table = el("table");
    var head = el("tr");
    ["remote gateway", "direction", "connection", "rtt", "msgs in/s", "msgs out/s", "bytes in/s", "bytes out/s"].forEach(function (h, i) {
      head.appendChild(el("th", i < 3 ? { "class": "l" } : null, h));
    });
    var thead = el("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = el("tbody");
    list.forEach(function (g) {
      var p = prevRows[g.direction + g.cid] || null;
      var tr = el("tr");
      tr.appendChild(td(g.gateway, "l"));
      tr.appendChild(td(g.direction, "l"));
      tr.appendChild(td("gid " + g.cid + " \u00b7 " + g.ip + ":" + g.port, "l"));
      tr.appendChild(td(g.rtt));
      tr.appendChild(td(num(rate(g, p, "in_msgs", dt)), "in"));
      tr.appendChild(td(num(rate(g, p, "out_msgs", dt)), "out"));
      tr.appendChild(td(bytes(rate(g, p, "in_bytes", dt)), "in"));
      tr.appendChild(td(bytes(rate(g, p, "out_bytes", dt)), "out"));
      body.appendChild(tr);
    });
    table.appendChild(body);
    box.replaceChildren(table);
  }

  function renderCluster(s, old, dt) {
    var svg = document.getElementById("topology");
    var rows = document.getElementById("serverrows");
    svg.replaceChildren();
    if (!s.cluster) {
      document.getElementById("clusterlabel").textContent = "(not clustered)";
      rows.replaceChildren();
      svg.appendChild(sv("text", { x: 20, y: 40 }, "This server runs without a cluster."));
      return;
    }
    document.getElementById("clusterlabel").textContent = s.cluster.name + " \\u00b7 " + s.cluster.servers.length + " servers, as known from gossip";
    var prevRoutes = {};
    if (old && old.cluster) old.cluster.servers.forEach(function (x) { if (x.route) prevRoutes[x.server_id] = x.route; });
    var servers = s.cluster.servers;
    var n = servers.length, cx = 210, cy = 175, rad = n > 1 ? 125 : 0;
    var pos = servers.map(function (x, i) {
      var a = -Math.PI / 2 + 2 * Math.PI * i / n;
      return { x: cx + rad * Math.cos(a), y: cy + rad * Math.sin(a) };
    });
    // Full mesh: every pair of servers is routed; this server's routes carry live rates.
    for (var i = 0; i < n; i++) {
      for (var j = i + 1; j < n; j++) {
        var mine = servers[i].self || servers[j].self;
        svg.appendChild(sv("line", { x1: pos[i].x, y1: pos[i].y, x2: pos[j].x, y2: pos[j].y,
          stroke: mine ? "#4fb3ff" : "#3a4656", "stroke-width": mine ? "2" : "1", "stroke-dasharray": mine ? "" : "4 4" }));
      }
    }
    var table = [];
    servers.forEach(function (x, i) {
      var r = x.route, p = prevRoutes[x.server_id];
      var rin = r ? rate(r, p, "in_msgs", dt) : 0, rout = r ? rate(r, p, "out_msgs", dt) : 0;
      if (r) {
        var mx = (pos[0].x + pos[i].x) / 2, my = (pos[0].y + pos[i].y) / 2;
        svg.appendChild(sv("text", { "class": "rate", x: mx + 4, y: my - 4 }, "\\u2193" + num(rin) + " \\u2191" + num(rout) + " msg/s"));
      }
      var g = sv("g", { "data-server-name": x.server_name });
      g.appendChild(sv("circle", { cx: pos[i].x, cy: pos[i].y, r: x.self ? 26 : 22, fill: x.self ? "#123a57" : "#1d2733", stroke: x.self ? "#4fb3ff" : "#8593a3", "stroke-width": "2" }));
      g.appendChild(sv("text", { x: pos[i].x, y: pos[i].y + 4, "text-anchor": "middle" }, x.server_name.length > 10 ? x.server_name.slice(0, 9) + "\\u2026" : x.server_name));
      svg.appendChild(g);

      var tr = el("tr", { "data-server-name": x.server_name });
      tr.appendChild(td(x.server_name + (x.self ? " (this server)" : "")));
      tr.appendChild(td(x.server_id.slice(0, 12) + "\\u2026", "l dim"));
      tr.appendChild(td(r ? "rid " + r.rid + " \\u00b7 " + r.ip + ":" + r.port + (r.did_solicit ? " (dialled)" : " (accepted)") : "\\u2014", "l"));
      tr.appendChild(td(r ? r.rtt : ""));
      tr.appendChild(td(r ? num(rin) : "", "in"));
      tr.appendChild(td(r ? num(rout) : "", "out"));
      tr.appendChild(td(r ? bytes(rate(r, p, "in_bytes", dt)) : "", "in"));
      tr.appendChild(td(r ? bytes(rate(r, p, "out_bytes", dt)) : "", "out"));
      tr.appendChild(td(r ? num(r.subscriptions) : ""));
      table.push(tr);
    });
    rows.replaceChildren.apply(rows, table);
  }

  function renderLeafs(s, old, dt) {
    var leafs = s.leafs || [];
    var prevLeafs = {};
    if (old && old.leafs) old.leafs.forEach(function (l) { prevLeafs[l.lid] = l; });
    document.getElementById("noleafs").style.display = leafs.length === 0 ? "" : "none";
    var rows = document.getElementById("leafrows");
    rows.replaceChildren.apply(rows, leafs.map(function (l) {
      var p = prevLeafs[l.lid];
      var tr = el("tr", { "data-lid": String(l.lid) });
      tr.appendChild(td(l.name || "lid " + l.lid, "l"));
      tr.appendChild(td(l.is_spoke ? "our hub" : "our leaf", "l"));
      tr.appendChild(td("lid " + l.lid + " \u00b7 " + l.ip + ":" + l.port, "l"));
      tr.appendChild(td(l.rtt));
      tr.appendChild(td(num(rate(l, p, "in_msgs", dt)), "in"));
      tr.appendChild(td(num(rate(l, p, "out_msgs", dt)), "out"));
      tr.appendChild(td(bytes(rate(l, p, "in_bytes", dt)), "in"));
      tr.appendChild(td(bytes(rate(l, p, "out_bytes", dt)), "out"));
      tr.appendChild(td(num(l.subscriptions)));
      return tr;
    }));
  }

  function poll() {
    fetch("skeinz", { cache: "no-store" }).then(function (res) {
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    }).then(function (s) {
      render(s);
      prev = s;
      document.getElementById("status").className = "ok";
    }).catch(function () {
      document.getElementById("status").className = "err";
    }).then(function () {
      setTimeout(poll, 1000);
    });
  }
  poll();
})();
</script>
</body>
</html>
`;
}
