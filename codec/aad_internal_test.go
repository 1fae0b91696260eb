package codec

import (
	"errors"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// TestKeyIDIsAuthenticated relabels a payload to another id that maps to the
// very same key. Only the AAD binding can catch that; ParseKeys refuses such
// a keyring, so it is built by hand here.
func TestKeyIDIsAuthenticated(t *testing.T) {
	kr, err := ParseKeys("a:" + NewKey())
	if err != nil {
		t.Fatal(err)
	}
	kr.ids = append(kr.ids, "b")
	kr.keys["b"] = kr.keys["a"]
	c := NewCodec(kr)

	p, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	enc, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(enc); err != nil {
		t.Fatal(err)
	}
	relabelled := proto.Clone(enc[0]).(*commonpb.Payload)
	relabelled.Metadata[MetadataKeyID] = []byte("b")
	if _, err := c.Decode([]*commonpb.Payload{relabelled}); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("relabelled key id: err = %v, want ErrDecrypt", err)
	}
}
