// madoguchi web chat page. Every word comes from the #texts JSON block
// (rendered from the locales); everything anybody wrote is set with
// textContent, never as HTML. Protocol: see src/channels/web/socket.rs.
(function () {
  "use strict";
  var T = JSON.parse(document.getElementById("texts").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var log = $("log"), input = $("input"), form = $("form"), statusEl = $("status");
  var typing = $("typing"), app = $("app");
  var ws = null, cursor = 0, seen = {}, outbox = [], resumeToken = "", composing = false;
  var retry = 0, retryTimer = 0, pingTimer = 0, pongTimer = 0, connectTimer = 0, n = 0;

  $("title").textContent = T["web-title"];
  $("send").textContent = T["web-send"];
  input.setAttribute("aria-label", T["web-input-label"]);
  input.placeholder = T["web-input-label"];
  $("resume").textContent = T["web-resume-link"];
  typing.textContent = T["web-typing"];

  function setStatus(s) {
    statusEl.className = s;
    statusEl.textContent = T["web-status-" + s];
  }

  function atBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
  function scroll() { log.scrollTop = log.scrollHeight; }

  function bubble(kind, text) {
    var div = document.createElement("div");
    div.className = "msg " + kind;
    div.textContent = text;
    var stick = atBottom();
    log.appendChild(div);
    if (stick || kind === "me") scroll();
    return div;
  }

  function showReply(msg) {
    if (seen[msg.id]) return;
    seen[msg.id] = true;
    if (msg.id > cursor) cursor = msg.id;
    typing.hidden = true;
    (msg.replies || []).forEach(function (r) {
      var div = bubble("bot", r.text);
      div.setAttribute("data-id", msg.id);
      if (r.choices && r.choices.length) {
        var box = document.createElement("div");
        box.className = "choices";
        r.choices.forEach(function (c) {
          var b = document.createElement("button");
          b.type = "button";
          b.textContent = c.label;
          b.setAttribute("data-choice", c.id);
          b.addEventListener("click", function () {
            Array.prototype.forEach.call(box.querySelectorAll("button"), function (x) { x.disabled = true; });
            bubble("me", c.label);
            post({ type: "choice", id: c.id, key: key() });
          });
          box.appendChild(b);
        });
        div.appendChild(box);
      }
    });
    scroll();
  }

  function key() { n += 1; return Date.now().toString(36) + "-" + n + "-" + Math.random().toString(36).slice(2, 8); }

  function post(msg) {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg));
    else { outbox.push(msg); connect(); }
  }

  function sendText() {
    var text = input.value;
    if (!text.trim()) return;
    input.value = "";
    grow();
    bubble("me", text);
    post({ type: "text", text: text, id: key() });
  }

  function onMessage(ev) {
    var msg;
    try { msg = JSON.parse(ev.data); } catch (e) { return; }
    if (msg.type === "session") {
      resumeToken = msg.resume || "";
      if (msg.lang) document.documentElement.lang = msg.lang;
      retry = 0;
      setStatus("online");
      var queued = outbox; outbox = [];
      queued.forEach(post);
    } else if (msg.type === "reply") showReply(msg);
    else if (msg.type === "mine") bubble("me", msg.text);
    else if (msg.type === "typing") { typing.hidden = false; }
    else if (msg.type === "state") { if (msg.status !== "bot") typing.hidden = true; }
    else if (msg.type === "notice") { typing.hidden = true; bubble("notice", msg.text); }
    else if (msg.type === "pong") { clearTimeout(pongTimer); }
  }

  function drop() {
    if (!ws) return;
    var old = ws; ws = null;
    old.onopen = old.onclose = old.onmessage = old.onerror = null;
    try { old.close(); } catch (e) { /* already closed */ }
  }

  function connect() {
    if (ws && (ws.readyState === 0 || ws.readyState === 1)) return;
    clearTimeout(retryTimer);
    drop();
    setStatus("connecting");
    var s = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/chat/ws");
    ws = s;
    // iOS may leave a socket "connecting" forever after backgrounding.
    clearTimeout(connectTimer);
    connectTimer = setTimeout(function () { if (ws === s && s.readyState === 0) { drop(); later(); } }, 10000);
    s.onopen = function () { s.send(JSON.stringify({ type: "hello", cursor: cursor })); };
    s.onmessage = onMessage;
    s.onclose = function () { if (ws === s) { ws = null; later(); } };
  }

  function later() {
    setStatus("offline");
    clearTimeout(retryTimer);
    if (document.visibilityState === "hidden") return;
    var wait = Math.min(30000, 1000 * Math.pow(2, retry)) * (0.5 + Math.random() / 2);
    retry += 1;
    retryTimer = setTimeout(connect, wait);
  }

  // A socket that survived backgrounding may be dead without knowing it.
  function check() {
    if (!ws || ws.readyState !== 1) { connect(); return; }
    ws.send(JSON.stringify({ type: "ping" }));
    clearTimeout(pongTimer);
    pongTimer = setTimeout(function () { drop(); connect(); }, 5000);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { retry = 0; check(); }
  });
  window.addEventListener("online", function () { retry = 0; drop(); connect(); });
  window.addEventListener("offline", function () { setStatus("offline"); });
  pingTimer = setInterval(function () {
    if (document.visibilityState === "visible" && ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "ping" }));
  }, 25000);

  input.addEventListener("compositionstart", function () { composing = true; });
  input.addEventListener("compositionend", function () { composing = false; });
  input.addEventListener("keydown", function (e) {
    if (e.key !== "Enter" || e.shiftKey) return;
    // Enter that confirms an IME conversion must not send.
    if (e.isComposing || e.keyCode === 229 || composing) return;
    e.preventDefault();
    sendText();
  });
  function grow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 160) + "px";
  }
  input.addEventListener("input", grow);
  form.addEventListener("submit", function (e) { e.preventDefault(); sendText(); });

  $("resume").addEventListener("click", function () {
    if (!resumeToken) return;
    var field = $("resume-url");
    field.value = location.origin + location.pathname + "#resume=" + resumeToken;
    field.hidden = false;
    field.select();
    scroll();
    if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(function () {
      $("resume").textContent = T["web-resume-copied"];
    }, function () { /* the field stays selected for copying by hand */ });
  });

  // Keep the input above the on-screen keyboard.
  if (window.visualViewport) {
    var fit = function () {
      app.style.height = window.visualViewport.height + "px";
      scroll();
    };
    window.visualViewport.addEventListener("resize", fit);
    fit();
  }

  var m = /^#resume=([A-Za-z0-9_.-]+)$/.exec(location.hash);
  if (m) {
    history.replaceState(null, "", location.pathname + location.search);
    fetch("/chat/resume", { method: "POST", body: m[1], credentials: "same-origin" })
      .then(function (r) { if (!r.ok) bubble("notice", T["web-resume-invalid"]); }, function () {})
      .then(connect);
  } else connect();
})();
