package cloud

import (
	"testing"
	"time"
)

func TestQuotaEndTag(t *testing.T) {
	end := time.Date(2026, 9, 30, 23, 59, 0, 0, time.UTC)
	tag := QuotaEndTag(end)
	if tag != "quota-ends-2026-09-30" || len(tag) > MaxTagLen {
		t.Fatalf("QuotaEndTag = %q", tag)
	}
	d, ok := ParseQuotaEndTag(tag)
	if !ok || !d.Equal(time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("ParseQuotaEndTag(%q) = %v, %v", tag, d, ok)
	}
	for _, bad := range []string{"kaizen", "quota-ends-", "quota-ends-2026-9-30", "quota-ends-2026-02-30", "quota-ends-2026-09-30x", "Quota-ends-2026-09-30"} {
		if _, ok := ParseQuotaEndTag(bad); ok {
			t.Errorf("ParseQuotaEndTag(%q) accepted", bad)
		}
	}
	if d, ok := QuotaEnd([]string{"kaizen", "quota-ends-2026-09-30", "quota-ends-2026-12-31", "quota-ends-2026-01-01"}); !ok || d.Format(time.DateOnly) != "2026-12-31" {
		t.Errorf("QuotaEnd = %v %v, want the latest", d, ok)
	}
}
