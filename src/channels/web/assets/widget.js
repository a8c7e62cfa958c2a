// madoguchi web chat embed: <script src="https://HOST/chat/widget.js" async></script>
// Puts the chat in an iframe where the script tag is (or in the element named by
// data-target); data-height sets its height (default 600px).
(function () {
  var me = document.currentScript;
  if (!me) return;
  var base = new URL(me.src, location.href);
  var frame = document.createElement("iframe");
  frame.src = base.origin + "/chat";
  frame.title = me.getAttribute("data-title") || document.title;
  frame.style.cssText = "width:100%;max-width:760px;border:1px solid #ddd;border-radius:8px;height:" +
    (me.getAttribute("data-height") || "600px");
  frame.setAttribute("allow", "clipboard-write");
  var target = me.getAttribute("data-target");
  var host = target && document.querySelector(target);
  if (host) host.appendChild(frame); else me.parentNode.insertBefore(frame, me.nextSibling);
})();
