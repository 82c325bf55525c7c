// Package handset simulates one Polycom-like desk phone: it fetches its
// boot and device files over HTTP like UC Software does, finds its SIP
// account in them and registers it from its own UDP socket.
package handset
