package mcp

import sdk "github.com/modelcontextprotocol/go-sdk/mcp"

// ToolFingerprint is the fingerprint Validate gives a tool, so a live tool
// can be compared with the approved contract one at a time (the gateway does
// so on every tools/list it relays).
func ToolFingerprint(t *sdk.Tool) (string, error) {
	in, err := canonical(t.InputSchema)
	if err != nil {
		return "", err
	}
	out, err := canonical(t.OutputSchema)
	if err != nil {
		return "", err
	}
	return Fingerprint(t.Name, t.Description, in, out), nil
}
