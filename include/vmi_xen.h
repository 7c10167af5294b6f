/*
 * vmi_xen.h - the Xen driver's constructor. No Xen header here: only
 * vmi/xen/ includes them (DESIGN.md dependency rule).
 */
#ifndef VMI_XEN_H
#define VMI_XEN_H

#include <stdint.h>

struct vmi_driver;

/*
 * Open domid for introspection from dom0. Probes what Xen offers on this
 * machine (xc_monitor_get_capabilities, MTF, mem_access) and picks the ops
 * table to match; vmi_info() reports the choice and the probe results.
 * Returns 0 or -errno (-ESRCH: no such domain, -EACCES: not privileged,
 * -EPROTO: the hypervisor's vm_event interface version differs).
 */
int vmi_xen_open(uint32_t domid, struct vmi_driver **out);

/* Resolve a domain name through xenstore (/local/domain/N/name). */
int vmi_xen_domid_by_name(const char *name, uint32_t *domid);

struct vmi_xen_domain {
	uint32_t domid;
	char name[64];
};

/* The domains xenstore lists, up to max; returns how many were written. */
int vmi_xen_list_domains(struct vmi_xen_domain *out, unsigned max);

#endif
