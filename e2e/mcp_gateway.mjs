// Drives modelplane's MCP gateway with the official MCP TypeScript SDK, as
// an agent would: list the tools, call one, then watch a tool that drifted
// upstream disappear. Input (argv[2], JSON): {url, token, driftURL}.
// Output (stdout, JSON): what the client saw.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const { url, token, driftURL } = JSON.parse(process.argv[2]);
const out = { errors: [] };

async function unauthenticated() {
  // No token: the SDK's transport must surface the 401.
  const c = new Client({ name: "anonymous-agent", version: "1.0.0" });
  try {
    await c.connect(new StreamableHTTPClientTransport(new URL(url)));
    return "connected";
  } catch (e) {
    return String(e.message || e);
  }
}

out.anonymous = await unauthenticated();

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "ts-agent", version: "1.0.0" });
let changed = 0;
client.setNotificationHandler(ToolListChangedNotificationSchema, () => { changed++; });
await client.connect(transport);
out.protocol = transport.protocolVersion ?? null;
out.toolsBefore = (await client.listTools()).tools.map((t) => t.name).sort();

const echo = await client.callTool({ name: "echo", arguments: { text: "hello from the TypeScript SDK" } });
out.echo = echo.content?.[0]?.text ?? null;
const search = await client.callTool({ name: "search_notes", arguments: { query: "ship" } });
out.searchBefore = search.isError ? "error" : "ok";

// The upstream changes search_notes under the same version.
const r = await fetch(driftURL, { method: "POST" });
out.driftStatus = r.status;
const deadline = Date.now() + 20000;
while (changed === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
out.listChanged = changed;
out.toolsAfter = (await client.listTools()).tools.map((t) => t.name).sort();
try {
  const res = await client.callTool({ name: "search_notes", arguments: { query: "ship" } });
  out.searchAfter = res.isError ? `isError: ${res.content?.[0]?.text}` : "ok";
} catch (e) {
  out.searchAfter = `error: ${e.message}`;
}
await fetch(driftURL, { method: "DELETE" });
await client.close();
process.stdout.write(JSON.stringify(out));
