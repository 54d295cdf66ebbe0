package httpx

import (
	"net/http"
	"testing"

	"github.com/auditstore/auditstore/schema"
)

func TestStatus(t *testing.T) {
	tests := []struct {
		kind schema.Kind
		want int
	}{
		{schema.KindInvalid, http.StatusBadRequest}, {schema.KindUnauthenticated, http.StatusUnauthorized},
		{schema.KindForbidden, http.StatusForbidden}, {schema.KindNotFound, http.StatusNotFound},
		{schema.KindConflict, http.StatusConflict}, {schema.KindTooLarge, http.StatusRequestEntityTooLarge},
		{schema.KindUnavailable, http.StatusServiceUnavailable}, {schema.KindUnsupported, http.StatusUnsupportedMediaType},
		{schema.KindTooManyRequests, http.StatusTooManyRequests}, {schema.KindTimeout, http.StatusRequestTimeout},
		{0, http.StatusInternalServerError},
	}
	for _, tt := range tests {
		if got := Status(tt.kind); got != tt.want {
			t.Errorf("Status(%v)=%d, want %d", tt.kind, got, tt.want)
		}
	}
}
