/* dpt help [TOPIC]: see help_topics.c. */
#ifndef DPT_CLI_HELP_TOPICS_H
#define DPT_CLI_HELP_TOPICS_H

#include <stdio.h>

/* name NULL: usage (the commands) and the topics; else the topic's text.
 * Returns the exit status (2 after one line for an unknown topic). */
int cli_help_topic(const char *name, void (*usage)(FILE *));

#endif
