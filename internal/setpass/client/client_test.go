package client

import "testing"

// TestClientReadsBothErrorShapes: addusers' client reads Keystone's shape
// and the bare string of older setpass versions alike.
func TestClientReadsBothErrorShapes(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"keystone shape", `{"error":{"code":400,"title":"Bad Request","message":"pin must be 4 digits"}}`, "pin must be 4 digits"},
		{"older bare string", `{"error":"pin must be 4 digits"}`, "pin must be 4 digits"},
		{"not the API's", `404 page not found`, ""},
		{"other JSON", `{"detail":"x"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := apiErrorMessage([]byte(tt.body)); got != tt.want {
				t.Errorf("%q, want %q", got, tt.want)
			}
		})
	}
}
