package discovery

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// uuidTimeLayout is the timestamp prefix of Nepxion's unique IDs without
// its milliseconds: yyyyMMdd-HHmmss, then "-SSS".
const uuidTimeLayout = "20060102-150405"

// uuidPrefixLen is len("yyyyMMdd-HHmmss-SSS").
const uuidPrefixLen = 19

// NewUniqueID returns a unique instance ID in Nepxion's format,
// yyyyMMdd-HHmmss-SSS-NNNN-NNN-NNN: the time now (in now's location, as
// Nepxion writes it in the JVM's zone) followed by ten random digits read
// from r (crypto/rand when r is nil).
func NewUniqueID(now time.Time, r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("unique id: random digits: %w", err)
	}
	n := binary.BigEndian.Uint64(b[:]) % 1e10
	return fmt.Sprintf("%s-%03d-%04d-%03d-%03d", now.Format(uuidTimeLayout), now.Nanosecond()/1e6,
		n/1e6, n/1e3%1e3, n%1e3), nil
}

// ParseStarted reads the start time from the timestamp prefix of a unique
// ID, yyyyMMdd-HHmmss-SSS, followed by the end of the string or '-'. The
// prefix names no time zone; it is read in the local zone, as Nepxion
// writes it in the JVM's. ok is false when the prefix is missing or names
// no real time (a 13th month, a 31st of February).
func ParseStarted(uuid string) (t time.Time, ok bool) {
	if len(uuid) < uuidPrefixLen || (len(uuid) > uuidPrefixLen && uuid[uuidPrefixLen] != '-') {
		return time.Time{}, false
	}
	p := uuid[:uuidPrefixLen]
	for i := 0; i < len(p); i++ {
		c := p[i]
		if i == 8 || i == 15 {
			if c != '-' {
				return time.Time{}, false
			}
		} else if c < '0' || c > '9' {
			return time.Time{}, false
		}
	}
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			n = n*10 + int(p[i]-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(4, 6), num(6, 8)
	hour, minute, sec, ms := num(9, 11), num(11, 13), num(13, 15), num(16, 19)
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.Local)
	return t.Add(time.Duration(ms) * time.Millisecond), true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
