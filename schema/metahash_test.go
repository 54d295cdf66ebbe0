package schema

import (
	"math"
	"testing"
)

func TestMetadataHashesLeaves(t *testing.T) {
	md := `{"s":"v","n":1.5,"b":true,"z":null,"a":[1],"o":{"s":"w","o":{"deep":1}},"big":123456789012345678901234567890}`
	got := MetadataHashes(md)
	want := []uint64{
		MetadataLeafHash(KindString, []string{"s"}, "v"),
		MetadataLeafHash(KindNumber, []string{"n"}, MetadataNumber(1.5)),
		MetadataLeafHash(KindBool, []string{"b"}, MetadataBool(true)),
		MetadataLeafHash(KindString, []string{"o", "s"}, "w"),
	}
	if len(got) != len(want) {
		t.Fatalf("got %d hashes, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("hash %d = %d, want %d", i, got[i], want[i])
		}
	}
	// Paths are unambiguous: the same bytes split differently hash apart.
	if MetadataLeafHash(KindString, []string{"a"}, "1:bx") == MetadataLeafHash(KindString, []string{"a", "b"}, "x") {
		t.Error("depth-1 and depth-2 leaves collide")
	}
	if MetadataLeafHash(KindNumber, []string{"n"}, MetadataNumber(0)) != MetadataLeafHash(KindNumber, []string{"n"}, MetadataNumber(math.Copysign(0, -1))) {
		t.Error("0 and -0 hash apart")
	}
}

func BenchmarkMetadataHashes(b *testing.B) {
	md := `{"secretPath":"/apps/billing/config","environment":"staging","secretKey":"AWS_SECRET_ACCESS_KEY","secretVersion":7,"numberOfSecrets":58,"secretKeys":["SLACK_WEBHOOK","ENCRYPTION_KEY","SMTP_PASSWORD"],"client":{"sdk":"python","version":"3.8.2"},"requestId":"384d5492fadfb2d71453f9b9f4970d2e"}`
	b.SetBytes(int64(len(md)))
	for b.Loop() {
		MetadataHashes(md)
	}
}
