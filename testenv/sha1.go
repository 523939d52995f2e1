package testenv

import (
	"crypto/sha1"
	"encoding/hex"
)

func sha1Hex(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}
