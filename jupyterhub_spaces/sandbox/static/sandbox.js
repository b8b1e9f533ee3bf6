// Browser side of the Sandbox: draws the desktop and sends input. Clipboard and file
// transfer are not wired up here, and the gateway drops them anyway.
(() => {
/* global Guacamole */
"use strict";

const screen = document.getElementById("screen");
const status = document.getElementById("status");
const tunnel = new Guacamole.WebSocketTunnel(document.body.dataset.tunnel);
const client = new Guacamole.Client(tunnel);
const display = client.getDisplay();
screen.appendChild(display.getElement());

const STATES = ["Idle", "Connecting…", "Waiting…", "Connected", "Disconnecting…", "Disconnected"];

function area() {
  return { width: Math.max(screen.clientWidth, 1), height: Math.max(screen.clientHeight, 1) };
}

function fit() {
  const { width, height } = area();
  if (display.getWidth() && display.getHeight()) {
    display.scale(Math.min(width / display.getWidth(), height / display.getHeight(), 1));
  }
}

client.onstatechange = (state) => {
  status.textContent = STATES[state] || String(state);
  document.body.dataset.state = String(state);
};
client.onerror = (error) => {
  status.textContent = `Error: ${error.message || "connection failed"} (${error.code})`;
  document.body.dataset.error = String(error.code);
};
display.onresize = fit;
window.addEventListener("resize", () => {
  const { width, height } = area();
  client.sendSize(width, height);
  fit();
});

const mouse = new Guacamole.Mouse(display.getElement());
// positions are in page pixels of the scaled display: the client scales them back
mouse.onEach(["mousedown", "mouseup", "mousemove"], (event) => client.sendMouseState(event.state, true));

const keyboard = new Guacamole.Keyboard(screen);
keyboard.onkeydown = (keysym) => { client.sendKeyEvent(1, keysym); return false; };
keyboard.onkeyup = (keysym) => { client.sendKeyEvent(0, keysym); };
screen.addEventListener("click", () => screen.focus());

window.addEventListener("pagehide", () => client.disconnect());

const { width, height } = area();
const dpi = Math.round(96 * (window.devicePixelRatio || 1));
client.connect(`width=${width}&height=${height}&dpi=${dpi}`);
screen.focus();
window.sandbox = { client, display, tunnel };
})();
