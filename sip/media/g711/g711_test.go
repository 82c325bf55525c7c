package g711

import "testing"

func TestRoundTrip(t *testing.T) {
	// Every code decodes to a sample that encodes back to it (G.711's
	// codes are a bijection onto their decoded levels, but for the
	// µ-law's two zeros).
	for _, pt := range []uint8{PCMU, PCMA} {
		for c := range 256 {
			s := Decode(pt, []byte{byte(c)})
			back := Encode(pt, s)[0]
			if back != byte(c) && !(pt == PCMU && s[0] == 0) {
				t.Fatalf("pt %d: code %#x decodes to %d, which encodes to %#x", pt, c, s[0], back)
			}
		}
	}
}

// TestTranscode: µ-law → A-law → µ-law keeps each level within one A-law
// step of the original (A-law is coarser near zero, finer at the top).
func TestTranscode(t *testing.T) {
	for c := range 256 {
		src := []byte{byte(c)}
		a, u := make([]byte, 1), make([]byte, 1)
		UlawToAlaw(a, src)
		AlawToUlaw(u, a)
		orig, mid := int(UlawDecode(src[0])), int(AlawDecode(a[0]))
		if abs(orig-mid) > abs(orig)/16+16 {
			t.Errorf("µ %#x (%d) → A %#x (%d): too far", c, orig, a[0], mid)
		}
		if mid != 0 && int(UlawDecode(u[0]))*mid < 0 {
			t.Errorf("µ %#x → A → µ %#x changed sign", c, u[0])
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
