package simgate

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// EncodeCursor returns the cursor of a page that continues after the row
// created at ms (unix milliseconds) with the key key: the lists of messages
// and of webhook deliveries are ordered by both, newest first. A cursor is
// opaque to clients; every store writes and reads it the same way.
func EncodeCursor(ms int64, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ms, 10) + ":" + key))
}

// ParseCursor reads a cursor of EncodeCursor, or returns a CodeInvalid
// error.
func ParseCursor(c string) (ms int64, key string, err error) {
	bad := Errorf(CodeInvalid, "cursor %q is not valid", c)
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", bad
	}
	at, key, ok := strings.Cut(string(b), ":")
	if !ok {
		return 0, "", bad
	}
	if ms, err = strconv.ParseInt(at, 10, 64); err != nil {
		return 0, "", bad
	}
	return ms, key, nil
}
