// Hand this service's XSRF token to the JupyterLab sidebar that opened this page in
// a hidden frame. Only a window of the same origin receives it.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("spaces-config").textContent);
  if (window.parent && window.parent !== window) {
    window.parent.postMessage(
      { type: "jupyterhub-spaces:connect", xsrf: config.xsrf, user: config.user },
      window.location.origin
    );
  }
})();
