// Package handset simulates one desk phone of a vendor (vendor.go: Polycom
// UC Software, Yealink, Cisco MPP): it fetches its boot and device files
// over HTTP as that vendor's firmware does, registers every
// line they configure (reg.N) from its own UDP socket, and then lives on
// its own: it challenges check-sync NOTIFYs (requestValidation: 401, then
// only a valid digest of the addressed line's credentials is accepted),
// re-fetches its files and applies the line diff (lines that left or
// changed are un-REGISTERed with their old credentials, new ones
// registered with fresh Call-IDs, unchanged ones refreshed), or reboots
// (Yealink's default, or reboot=true), and refreshes its configured lines
// before they expire.
package handset
