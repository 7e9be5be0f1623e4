/* Each subcommand: argv[0] is the command name; returns the process exit code. */
#ifndef GN_COMMANDS_H
#define GN_COMMANDS_H

int cmd_summary(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_experiment(int argc, char **argv);

#endif
