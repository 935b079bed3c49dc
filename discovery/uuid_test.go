package discovery

import (
	"bytes"
	"errors"
	"regexp"
	"testing"
	"testing/iotest"
	"time"
)

func TestNewUniqueID(t *testing.T) {
	now := time.Date(2024, 12, 31, 23, 59, 58, 7e6, time.Local)
	id, err := NewUniqueID(now, bytes.NewReader([]byte{0, 0, 0, 0, 0x49, 0x96, 0x02, 0xD2})) // 1234567890
	if err != nil {
		t.Fatal(err)
	}
	if want := "20241231-235958-007-1234-567-890"; id != want {
		t.Fatalf("id = %q, want %q", id, want)
	}
	at := time.Now()
	id, err = NewUniqueID(at, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d{8}-\d{6}-\d{3}-\d{4}-\d{3}-\d{3}$`).MatchString(id) {
		t.Fatalf("id %q is not in Nepxion's format", id)
	}
	got, ok := ParseStarted(id)
	if !ok || !got.Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("ParseStarted(%q) = %v, %v", id, got, ok)
	}
	if _, err := NewUniqueID(now, iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Fatal("no error from a failing reader")
	}
}

func TestParseStarted(t *testing.T) {
	tests := []struct {
		give   string
		want   time.Time
		wantOK bool
	}{
		{give: "20240305-102030-456-1234-567-890", want: time.Date(2024, 3, 5, 10, 20, 30, 456e6, time.Local), wantOK: true},
		{give: "20240305-102030-456", want: time.Date(2024, 3, 5, 10, 20, 30, 456e6, time.Local), wantOK: true},
		{give: "20240229-000000-000-x", want: time.Date(2024, 2, 29, 0, 0, 0, 0, time.Local), wantOK: true},
		{give: "20230229-000000-000"},  // no 29 February in 2023
		{give: "20241301-000000-000"},  // month 13
		{give: "20240101-240000-000"},  // hour 24
		{give: "20240101-000000-00"},   // short
		{give: "20240101-000000-0000"}, // no '-' after the millis
		{give: "2024010a-000000-000"},
		{give: "20240101_000000-000"},
		{give: "+2024010-000000-000"},
		{give: ""},
	}
	for _, tt := range tests {
		got, ok := ParseStarted(tt.give)
		if ok != tt.wantOK || !got.Equal(tt.want) {
			t.Errorf("ParseStarted(%q) = %v, %v; want %v, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}

func FuzzParseStarted(f *testing.F) {
	for _, s := range []string{"20240305-102030-456-1234-567-890", "20240229-000000-000", "99999999-999999-999", "00000000-000000-000-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseStarted(s)
		if !ok {
			if !got.IsZero() {
				t.Fatalf("ParseStarted(%q) failed but returned %v", s, got)
			}
			return
		}
		// An independent reading of the same prefix agrees.
		want, err := time.ParseInLocation("20060102-150405.000", s[:15]+"."+s[16:19], time.Local)
		if err != nil || !want.Equal(got) {
			t.Fatalf("ParseStarted(%q) = %v; time.Parse says %v, %v", s, got, want, err)
		}
	})
}
