/* MTL Playground embed helper: include once on a page with MTL Playground iframes and each iframe grows or
   shrinks to fit its content (the pages post their height). No options, no dependencies, ~0.5 kB. */
(function () {
  window.addEventListener("message", function (e) {
    var d = e.data;
    if (!d || d.type !== "mtl-playground:resize" || !(d.height > 0)) return;
    var frames = document.getElementsByTagName("iframe");
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].contentWindow === e.source) {
        frames[i].style.height = Math.ceil(d.height) + "px";
        frames[i].setAttribute("scrolling", "no");
      }
    }
  });
})();
