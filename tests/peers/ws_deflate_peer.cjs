// A permessage-deflate peer on node's `ws` (a third-party implementation, pinned by .ci/run),
// for the strict client's interoperability test: it accepts the client's offer as its
// perMessageDeflate options (argv[2], JSON) allow, sends a few messages, checks that each comes
// back the same with its type, and says so on one JSON line. Prints its port on stdout first.
//   NODE_PATH=<dir>/node_modules node tests/peers/ws_deflate_peer.cjs '{"threshold":0}'
"use strict";
const { WebSocketServer } = require("ws");
const { randomBytes } = require("node:crypto");

const perMessageDeflate = JSON.parse(process.argv[2]);
const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate });
server.on("listening", () => console.log(server.address().port));
server.on("connection", (socket) => {
  const lorem = "lorem ipsum dolor sit ".repeat(200);
  // 20000 random bytes twice: the second half reaches 20000 bytes back in a 15-bit window.
  const half = randomBytes(20000);
  const sent = [
    [lorem, false],
    [lorem, false],
    ["héllo", false],
    ["", false],
    [Buffer.concat([half, half]), true],
  ];
  const echoes = [];
  socket.on("message", (data, isBinary) => {
    echoes.push([data, isBinary]);
    if (echoes.length < sent.length) return;
    const same = sent.every(([message, binary], i) =>
      echoes[i][1] === binary && Buffer.from(message).equals(echoes[i][0])
    );
    console.log(JSON.stringify({ extensions: socket.extensions, same }));
    socket.close(1000);
  });
  // ws fails the connection itself (1007 for data that does not inflate); the line says why.
  socket.on("error", (error) => console.log(JSON.stringify({ error: error.message })));
  for (const [message, binary] of sent) socket.send(message, { binary });
});
