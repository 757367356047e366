package queue

import (
	"bytes"
	"strings"
	"testing"
)

func TestSealer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := newSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	const text = "Your code is 482913"
	sealed := s.seal(text, "+4915123456789", "ver_1")
	if !strings.HasPrefix(sealed, sealedPrefix) || strings.Contains(sealed, "482913") {
		t.Fatalf("sealed text %q", sealed)
	}
	if got, err := s.open(sealed, "+4915123456789", "ver_1"); err != nil || got != text {
		t.Fatalf("open = %q, %v", got, err)
	}
	// Bound to its message: another recipient or verification cannot use it.
	if _, err := s.open(sealed, "+4915123456780", "ver_1"); err == nil {
		t.Fatal("opened for another recipient")
	}
	if _, err := s.open(sealed, "+4915123456789", "ver_2"); err == nil {
		t.Fatal("opened for another verification")
	}
	// Another key (a changed secret) cannot open it.
	other, _ := newSealer(bytes.Repeat([]byte{8}, 32))
	if _, err := other.open(sealed, "+4915123456789", "ver_1"); err != errUnsealable {
		t.Fatalf("open with another key: %v", err)
	}
	// Plain texts pass through; corrupt sealed ones fail.
	if got, _ := s.open("hello", "+1", ""); got != "hello" {
		t.Fatalf("plain text changed to %q", got)
	}
	if _, err := s.open(sealedPrefix+"!!", "+1", ""); err != errUnsealable {
		t.Fatalf("corrupt: %v", err)
	}
	if _, err := newSealer([]byte("short")); err == nil {
		t.Fatal("a short key was accepted")
	}
}
