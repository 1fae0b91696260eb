// Package codec encrypts Temporal payloads with AES-256-GCM so that workflow
// inputs, results, signals, memos and failure messages are ciphertext in the
// Temporal server's history. It plugs into the SDK as a PayloadCodec and
// serves the codec HTTP endpoint the Temporal Web UI uses to show plaintext
// to authorised users.
package codec

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Metadata written on encrypted payloads.
const (
	EncodingEncrypted = "binary/encrypted"
	MetadataKeyID     = "encryption-key-id"
	MetadataCipher    = "encryption-cipher"
	CipherAES256GCM   = "AES256-GCM"
)

const (
	nonceSize = 12
	tagSize   = 16
)

// ErrUnknownKey is wrapped by Decode errors for payloads whose key id is not
// in the keyring.
var ErrUnknownKey = errors.New("unknown encryption key id")

// ErrDecrypt is wrapped by Decode errors for payloads that fail
// authentication: tampered ciphertext or metadata, or a wrong key.
var ErrDecrypt = errors.New("payload decryption failed")

// Codec is a converter.PayloadCodec that encrypts with the keyring's active
// key and decrypts with any of its keys. A nil keyring encrypts nothing and
// decrypts nothing.
type Codec struct {
	kr *Keyring
}

var _ converter.PayloadCodec = (*Codec)(nil)

// NewCodec returns a Codec over kr.
func NewCodec(kr *Keyring) *Codec { return &Codec{kr: kr} }

// NewDataConverter wraps the SDK's default data converter with the codec.
// With a nil keyring it is the default data converter: nothing is encrypted.
func NewDataConverter(kr *Keyring) converter.DataConverter {
	if kr == nil {
		return converter.GetDefaultDataConverter()
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), NewCodec(kr))
}

// FailureConverter moves failure messages and stack traces into an encoded
// payload (EncodeCommonAttributes) so dc encrypts them too; without it an
// error that quotes its input would leak that input into history in clear.
// Use it with a client whose DataConverter is dc.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}

// Encode encrypts each payload with the active key. Payloads that are
// already encrypted are kept as they are, so a codec configured twice (data
// converter and gRPC interceptor, say) does not wrap twice.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	id := c.kr.ActiveID()
	aead, ok := c.kr.aead(id)
	if !ok {
		return payloads, nil
	}
	aad := []byte(id)
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if isEncrypted(p) {
			out[i] = p
			continue
		}
		// One buffer: nonce, then the marshalled payload, sealed in place.
		buf := make([]byte, nonceSize, nonceSize+proto.Size(p)+tagSize)
		_, _ = rand.Read(buf) // never fails, see crypto/rand
		buf, err := proto.MarshalOptions{}.MarshalAppend(buf, p)
		if err != nil {
			return payloads, fmt.Errorf("codec: payload %d: %w", i, err)
		}
		sealed := aead.Seal(buf[:nonceSize], buf[:nonceSize], buf[nonceSize:], aad)
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:              []byte(id),
				MetadataCipher:             []byte(CipherAES256GCM),
			},
			Data: sealed,
		}
	}
	return out, nil
}

// Decode decrypts payloads encoded as binary/encrypted and passes every other
// payload through untouched, so histories written before encryption was
// turned on still read.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if !isEncrypted(p) {
			out[i] = p
			continue
		}
		dp, err := c.decrypt(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: payload %d: %w", i, err)
		}
		out[i] = dp
	}
	return out, nil
}

func (c *Codec) decrypt(p *commonpb.Payload) (*commonpb.Payload, error) {
	if ci := string(p.Metadata[MetadataCipher]); ci != CipherAES256GCM {
		return nil, fmt.Errorf("unsupported %s %q (want %q)", MetadataCipher, ci, CipherAES256GCM)
	}
	id := string(p.Metadata[MetadataKeyID])
	if id == "" {
		return nil, fmt.Errorf("no %s metadata", MetadataKeyID)
	}
	aead, ok := c.kr.aead(id)
	if !ok {
		have := "no keys configured"
		if c.kr != nil {
			have = "have " + strings.Join(c.kr.ids, ", ")
		}
		return nil, fmt.Errorf("%w %q (%s)", ErrUnknownKey, id, have)
	}
	if len(p.Data) < nonceSize+tagSize {
		return nil, fmt.Errorf("%w: key id %q: ciphertext too short", ErrDecrypt, id)
	}
	// Open into a fresh slice: the SDK forbids mutating the input payloads.
	plain, err := aead.Open(nil, p.Data[:nonceSize], p.Data[nonceSize:], []byte(id))
	if err != nil {
		return nil, fmt.Errorf("%w: key id %q: ciphertext or metadata was altered, or the key is wrong", ErrDecrypt, id)
	}
	var dp commonpb.Payload
	if err := proto.Unmarshal(plain, &dp); err != nil {
		return nil, fmt.Errorf("key id %q: decrypted payload does not unmarshal: %w", id, err)
	}
	return &dp, nil
}

func isEncrypted(p *commonpb.Payload) bool {
	return string(p.GetMetadata()[converter.MetadataEncoding]) == EncodingEncrypted
}
