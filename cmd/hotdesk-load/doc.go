// Command hotdesk-load is hotdesk's load generator and independent test
// peer: it simulates desk phones — Polycom VVX, Yealink T46U, Cisco MPP
// 8851 or a mix of them (-vendor), each with its vendor's User-Agent, DHCP
// option 60, boot files, parser and NOTIFY event (optional DHCP, boot file
// fetch, device registration, logins through the admin API, check-sync challenged and
// followed by the line diff, logout and the check that every phone that
// logged in is relocked) and runs
// single workloads (REGISTER flood, config fetch over HTTP and TFTP, login
// cycles, calls). It imports no hotdesk package on purpose.
package main
