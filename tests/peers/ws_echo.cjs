// An echo server on node's `ws` (a real third-party peer, pinned by .ci/run):
// every message goes back with its type. Prints its port on stdout.
//   NODE_PATH=<dir>/node_modules node tests/peers/ws_echo.cjs
"use strict";
const { WebSocketServer } = require("ws");

const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
server.on("listening", () => console.log(server.address().port));
server.on("connection", (socket) => {
  socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on("error", () => {});
});
