// Loading this module fills the opcode table: one import per instruction family.
import './alu.js';
import './mov.js';
import './control.js';
import './misc.js';
import './system.js';
