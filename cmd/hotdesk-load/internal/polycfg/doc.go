// Package polycfg reads Polycom UC Software configuration files the way a
// handset does: the <APPLICATION> master file and <polycomConfig> parameter
// files. It is deliberately independent of hotdesk's renderer and tolerant
// of what real phones tolerate (unknown elements, case, whitespace).
package polycfg
