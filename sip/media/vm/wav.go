package vm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrWAVFormat is a WAV file that is not 8 kHz 16-bit mono PCM, the one
// format voicemail plays and records (G.711's rate, no resampling).
var ErrWAVFormat = errors.New("vm: WAV must be 8000 Hz 16-bit mono PCM")

// MaxWAVBytes bounds a WAV read into memory (10 minutes at 8 kHz).
const MaxWAVBytes = 44 + 10*60*8000*2

// ReadWAV reads an 8 kHz 16-bit mono PCM WAV's samples.
func ReadWAV(r io.Reader) ([]int16, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWAVFormat, err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not RIFF/WAVE", ErrWAVFormat)
	}
	fmtSeen := false
	for range 32 { // chunks before "data": fmt, LIST, fact…
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWAVFormat, err)
		}
		size := binary.LittleEndian.Uint32(ch[4:])
		switch string(ch[0:4]) {
		case "fmt ":
			if size < 16 || size > 64 {
				return nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrWAVFormat, size)
			}
			b := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrWAVFormat, err)
			}
			format, channels := binary.LittleEndian.Uint16(b[0:]), binary.LittleEndian.Uint16(b[2:])
			rate, bits := binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint16(b[14:])
			if format != 1 || channels != 1 || rate != 8000 || bits != 16 {
				return nil, fmt.Errorf("%w: format %d, %d channels, %d Hz, %d bits", ErrWAVFormat, format, channels, rate, bits)
			}
			fmtSeen = true
		case "data":
			if !fmtSeen {
				return nil, fmt.Errorf("%w: data before fmt", ErrWAVFormat)
			}
			if size > MaxWAVBytes {
				return nil, fmt.Errorf("%w: %d bytes of audio, more than %d", ErrWAVFormat, size, MaxWAVBytes)
			}
			// Read what is there rather than allocate what the header
			// claims: a 44-byte upload must not cost megabytes. A short
			// chunk (a recording cut off by a crash) keeps what it has.
			b, err := io.ReadAll(io.LimitReader(r, int64(size&^1)))
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrWAVFormat, err)
			}
			n := len(b)
			out := make([]int16, n/2)
			for i := range out {
				out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
			}
			return out, nil
		default:
			if size > 1<<20 {
				return nil, fmt.Errorf("%w: %q chunk of %d bytes", ErrWAVFormat, ch[0:4], size)
			}
			if _, err := io.CopyN(io.Discard, r, int64(size+size%2)); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrWAVFormat, err)
			}
		}
	}
	return nil, fmt.Errorf("%w: no data chunk", ErrWAVFormat)
}

// ReadWAVFile reads a WAV file's samples.
func ReadWAVFile(path string) ([]int16, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadWAV(io.LimitReader(f, MaxWAVBytes+4096))
}

// EncodeWAV is samples as an 8 kHz 16-bit mono PCM WAV file.
func EncodeWAV(pcm []int16) []byte {
	n := len(pcm) * 2
	b := make([]byte, 44+n)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], 8000)
	binary.LittleEndian.PutUint32(b[28:], 16000)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(n))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	return b
}
