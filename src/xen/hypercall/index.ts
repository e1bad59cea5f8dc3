// Loading this module fills the hypercall table: one import per family.
import './misc.js';
import './sched.js';
import './vcpu.js';
import './evtchn.js';
import './mmu.js';
import './memory.js';
import './gnttab.js';
