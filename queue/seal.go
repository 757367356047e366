package queue

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// A verification's SMS carries its code, and the code must never be stored
// in plain text. Between Enqueue and the submit the text has to be kept
// somewhere that survives a restart, so the queue seals it: AES-256-GCM
// under Options.SealKey, with the message's recipient and verification id as
// additional data so a sealed text cannot be moved to another message. The
// store erases the sealed text once the message leaves the queue (a trigger
// in the schema), so not even the ciphertext outlives its use.

// sealedPrefix marks a sealed text in the messages table.
const sealedPrefix = "sealed:v1:"

// errUnsealable is the reason for failing a message whose sealed text
// cannot be opened, e.g. after the key changed.
var errUnsealable = errors.New("cannot open the sealed text of this verification SMS (was verify.secret changed?)")

type sealer struct{ aead cipher.AEAD }

// newSealer returns a sealer for a 32-byte key; nil key: a random one, so
// that sealed texts do not survive a restart.
func newSealer(key []byte) (*sealer, error) {
	if key == nil {
		key = make([]byte, 32)
		rand.Read(key)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("seal key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func sealAD(to, verificationID string) []byte { return []byte(to + "\x00" + verificationID) }

func (s *sealer) seal(text, to, verificationID string) string {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	ct := s.aead.Seal(nonce, nonce, []byte(text), sealAD(to, verificationID))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(ct)
}

// open returns the plain text of a sealed text, and any other text as is.
func (s *sealer) open(text, to, verificationID string) (string, error) {
	enc, ok := strings.CutPrefix(text, sealedPrefix)
	if !ok {
		return text, nil
	}
	b, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errUnsealable
	}
	pt, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], sealAD(to, verificationID))
	if err != nil {
		return "", errUnsealable
	}
	return string(pt), nil
}
