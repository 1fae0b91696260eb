package codec_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/modelplane/modelplane/codec"
)

func mustKeys(t testing.TB, s string) *codec.Keyring {
	t.Helper()
	kr, err := codec.ParseKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

type order struct {
	Customer string
	Items    []string
	Total    float64
}

func TestRoundTripPayloadTypes(t *testing.T) {
	kr := mustKeys(t, "k1:"+codec.NewKey())
	dc := codec.NewDataConverter(kr)
	const secret = "s3cr3t-roundtrip"

	values := []any{
		secret,
		42,
		order{Customer: secret, Items: []string{"a", "b"}, Total: 9.5},
		[]byte(secret),
		nil,
		&commonpb.WorkflowExecution{WorkflowId: secret, RunId: "r1"},
		map[string]any{"k": secret},
	}
	payloads, err := dc.ToPayloads(values...)
	if err != nil {
		t.Fatal(err)
	}
	if len(payloads.Payloads) != len(values) {
		t.Fatalf("%d payloads for %d values", len(payloads.Payloads), len(values))
	}
	for i, p := range payloads.Payloads {
		md := p.Metadata
		if string(md["encoding"]) != "binary/encrypted" || string(md["encryption-key-id"]) != "k1" || string(md["encryption-cipher"]) != "AES256-GCM" {
			t.Fatalf("payload %d metadata = %q", i, md)
		}
		if len(md) != 3 {
			t.Fatalf("payload %d carries extra metadata in clear: %q", i, md)
		}
		if bytes.Contains(p.Data, []byte(secret)) {
			t.Fatalf("payload %d data contains the plaintext", i)
		}
	}

	var (
		s  string
		n  int
		o  order
		b  []byte
		np *string
		we commonpb.WorkflowExecution
		m  map[string]any
	)
	if err := dc.FromPayloads(payloads, &s, &n, &o, &b, &np, &we, &m); err != nil {
		t.Fatal(err)
	}
	if s != secret || n != 42 || !reflect.DeepEqual(o, values[2]) || string(b) != secret || np != nil ||
		we.WorkflowId != secret || we.RunId != "r1" || m["k"] != secret {
		t.Fatalf("round trip mismatch: %q %d %+v %q %v %v %v", s, n, o, b, np, &we, m)
	}

	// The codec restores the exact original payload, metadata included.
	plain, _ := converter.GetDefaultDataConverter().ToPayload(o)
	c := codec.NewCodec(kr)
	enc, err := c.Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(dec[0], plain) {
		t.Fatalf("decoded %v, want %v", dec[0], plain)
	}
}

func TestEncryptionIsRandomised(t *testing.T) {
	c := codec.NewCodec(mustKeys(t, "k1:"+codec.NewKey()))
	p, _ := converter.GetDefaultDataConverter().ToPayload("same")
	a, _ := c.Encode([]*commonpb.Payload{p})
	b, _ := c.Encode([]*commonpb.Payload{p})
	if bytes.Equal(a[0].Data, b[0].Data) || bytes.Equal(a[0].Data[:12], b[0].Data[:12]) {
		t.Fatal("two encryptions of one payload share ciphertext or nonce")
	}
}

func TestEncodeDecodeDoNotMutateInput(t *testing.T) {
	c := codec.NewCodec(mustKeys(t, "k1:"+codec.NewKey()))
	p, _ := converter.GetDefaultDataConverter().ToPayload("x")
	orig := proto.Clone(p)
	enc, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(p, orig) {
		t.Fatal("Encode mutated its input")
	}
	encCopy := proto.Clone(enc[0])
	if _, err := c.Decode(enc); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(enc[0], encCopy) {
		t.Fatal("Decode mutated its input")
	}
}

func encryptOne(t *testing.T, kr *codec.Keyring, v any) *commonpb.Payload {
	t.Helper()
	p, err := codec.NewDataConverter(kr).ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTamperingIsDetected(t *testing.T) {
	kr := mustKeys(t, "k1:"+codec.NewKey()+",k2:"+codec.NewKey())
	c := codec.NewCodec(kr)
	good := encryptOne(t, kr, "payload")
	if _, err := c.Decode([]*commonpb.Payload{good}); err != nil {
		t.Fatal(err)
	}

	// Every byte matters: nonce, ciphertext body and tag.
	for _, i := range []int{0, 11, 12, len(good.Data) / 2, len(good.Data) - 17, len(good.Data) - 1} {
		bad := proto.Clone(good).(*commonpb.Payload)
		bad.Data[i] ^= 0x01
		_, err := c.Decode([]*commonpb.Payload{bad})
		if !errors.Is(err, codec.ErrDecrypt) {
			t.Fatalf("flipping byte %d: err = %v, want ErrDecrypt", i, err)
		}
	}

	mutate := map[string]func(p *commonpb.Payload){
		"key id to another known key": func(p *commonpb.Payload) { p.Metadata["encryption-key-id"] = []byte("k2") },
		"cipher":                      func(p *commonpb.Payload) { p.Metadata["encryption-cipher"] = []byte("AES128-CBC") },
		"no key id":                   func(p *commonpb.Payload) { delete(p.Metadata, "encryption-key-id") },
		"truncated":                   func(p *commonpb.Payload) { p.Data = p.Data[:20] },
		"appended":                    func(p *commonpb.Payload) { p.Data = append(p.Data, 0) },
	}
	for name, f := range mutate {
		bad := proto.Clone(good).(*commonpb.Payload)
		f(bad)
		if out, err := c.Decode([]*commonpb.Payload{bad}); err == nil {
			t.Fatalf("%s: tampered payload decoded to %v", name, out)
		}
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := codec.NewKey(), codec.NewKey()
	before := mustKeys(t, "old:"+oldKey)
	after := mustKeys(t, "new:"+newKey+",old:"+oldKey) // new key added first

	written := encryptOne(t, before, "written before rotation")
	var got string
	if err := codec.NewDataConverter(after).FromPayload(written, &got); err != nil || got != "written before rotation" {
		t.Fatalf("old payload after rotation: %q, %v", got, err)
	}

	fresh := encryptOne(t, after, "written after rotation")
	if id := string(fresh.Metadata["encryption-key-id"]); id != "new" {
		t.Fatalf("new payload uses key %q, want new", id)
	}
	// Retiring the old key too early is the one way rotation breaks: say so.
	_, err := codec.NewCodec(mustKeys(t, "new:"+newKey)).Decode([]*commonpb.Payload{written})
	if !errors.Is(err, codec.ErrUnknownKey) || !strings.Contains(err.Error(), `"old"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestUnknownKeyIDError(t *testing.T) {
	k1, k9 := codec.NewKey(), codec.NewKey()
	p := encryptOne(t, mustKeys(t, "k9:"+k9), "x")
	_, err := codec.NewCodec(mustKeys(t, "k1:"+k1)).Decode([]*commonpb.Payload{p})
	if !errors.Is(err, codec.ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	for _, want := range []string{`"k9"`, "k1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	assertNoKeyMaterial(t, err.Error(), k1, k9)

	// No keyring at all: encrypted payloads cannot be read, and say why.
	_, err = codec.NewCodec(nil).Decode([]*commonpb.Payload{p})
	if !errors.Is(err, codec.ErrUnknownKey) || !strings.Contains(err.Error(), "no keys") {
		t.Fatalf("nil keyring: err = %v", err)
	}
}

func TestPlaintextPassesThrough(t *testing.T) {
	kr := mustKeys(t, "k1:"+codec.NewKey())
	c := codec.NewCodec(kr)
	dc := converter.GetDefaultDataConverter()
	plain, _ := dc.ToPayloads("old history", 7, nil)
	zlib, _ := converter.NewCodecDataConverter(dc, converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true})).ToPayload("zipped")

	in := append(plain.Payloads, zlib, encryptOne(t, kr, "new"))
	out, err := c.Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if out[i] != in[i] {
			t.Fatalf("payload %d was not passed through untouched", i)
		}
	}
	var s string
	if err := dc.FromPayload(out[4], &s); err != nil || s != "new" {
		t.Fatalf("mixed batch: %q, %v", s, err)
	}

	// Reading plaintext history through the codec converter just works.
	var a string
	var n int
	if err := codec.NewDataConverter(kr).FromPayloads(plain, &a, &n); err != nil || a != "old history" || n != 7 {
		t.Fatalf("%q %d %v", a, n, err)
	}
}

func TestEncodeIsIdempotentAndNilKeyringIsOff(t *testing.T) {
	kr := mustKeys(t, "k1:"+codec.NewKey())
	c := codec.NewCodec(kr)
	once := encryptOne(t, kr, "x")
	twice, err := c.Encode([]*commonpb.Payload{once})
	if err != nil || twice[0] != once {
		t.Fatalf("re-encoding an encrypted payload changed it (err %v)", err)
	}

	p, _ := converter.GetDefaultDataConverter().ToPayload("x")
	out, err := codec.NewCodec(nil).Encode([]*commonpb.Payload{p})
	if err != nil || out[0] != p {
		t.Fatalf("nil keyring encoded a payload (err %v)", err)
	}
	if codec.NewDataConverter(nil) != converter.GetDefaultDataConverter() {
		t.Fatal("NewDataConverter(nil) should be the default converter")
	}
}

func TestFailureConverterEncryptsMessages(t *testing.T) {
	kr := mustKeys(t, "k1:"+codec.NewKey())
	fc := codec.FailureConverter(codec.NewDataConverter(kr))
	const secret = "s3cr3t-in-error"
	f := fc.ErrorToFailure(errors.New("bad input " + secret))
	raw, err := proto.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatalf("failure proto contains the message in clear: %v", f)
	}
	if got := fc.FailureToError(f); !strings.Contains(got.Error(), secret) {
		t.Fatalf("decoded error %q lost the message", got)
	}
}

// FuzzDecode checks that arbitrary ciphertext and metadata never panic and
// never decode without the right key.
func FuzzDecode(f *testing.F) {
	kr, err := codec.ParseKeys("k1:" + codec.NewKey())
	if err != nil {
		f.Fatal(err)
	}
	good, _ := codec.NewDataConverter(kr).ToPayload("seed")
	f.Add(good.Data, "k1", "AES256-GCM")
	f.Add([]byte{}, "k1", "AES256-GCM")
	f.Add(make([]byte, 28), "k1", "AES256-GCM")
	f.Add(good.Data, "", "")
	c := codec.NewCodec(kr)
	f.Fuzz(func(t *testing.T, data []byte, id, cipher string) {
		p := &commonpb.Payload{Data: data, Metadata: map[string][]byte{
			"encoding": []byte("binary/encrypted"), "encryption-key-id": []byte(id), "encryption-cipher": []byte(cipher),
		}}
		out, err := c.Decode([]*commonpb.Payload{p})
		if err == nil && !bytes.Equal(data, good.Data) {
			t.Fatalf("forged payload decoded: %v", out)
		}
	})
}

func benchPayload(b *testing.B) *commonpb.Payload {
	p, err := converter.GetDefaultDataConverter().ToPayload(bytes.Repeat([]byte("x"), 1024))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func BenchmarkEncode1KiB(b *testing.B) {
	c := codec.NewCodec(mustKeys(b, "k1:"+codec.NewKey()))
	in := []*commonpb.Payload{benchPayload(b)}
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Encode(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode1KiB(b *testing.B) {
	c := codec.NewCodec(mustKeys(b, "k1:"+codec.NewKey()))
	enc, err := c.Encode([]*commonpb.Payload{benchPayload(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}
