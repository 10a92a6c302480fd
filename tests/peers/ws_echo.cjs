// An echo server on node's `ws` (a real third-party peer, pinned by .ci/run):
// every message goes back with its type. Prints its port on stdout. With --deflate it accepts
// permessage-deflate with ws's defaults (messages under 1 KiB then go uncompressed, as RFC 7692
// lets a sender choose).
//   NODE_PATH=<dir>/node_modules node tests/peers/ws_echo.cjs [--deflate]
"use strict";
const { WebSocketServer } = require("ws");

const perMessageDeflate = process.argv.includes("--deflate");
const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate });
server.on("listening", () => console.log(server.address().port));
server.on("connection", (socket) => {
  socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on("error", () => {});
});
